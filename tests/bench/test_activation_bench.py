"""The activation benchmark runs end to end on a tiny world and checks its own results (so it cannot rot)."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "activation.py"


def test_a_tiny_run_prints_every_figure() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--members", "300", "--batches", "300", "--rate", "20",
                           "--seconds", "1"], capture_output=True, text=True, timeout=300, check=False)
    # Exit 1: the initial sync fell short or was refused by the capture server, or a probe never arrived.
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"initial sync to Meta Custom Audiences \(members/s, end to end\) +[\d,]+", out), out
    assert re.search(r"requests / rows per request +1 / 300", out), out
    assert re.search(r"add latency, send -> vendor request, p50 / p99 / max \(s\) at 20/s +[\d.]+ / [\d.]+", out)
    assert re.search(r"remove latency, send -> vendor request, p50 / p99 / max \(s\) at 20/s +[\d.]+ / [\d.]+",
                     out), out
    assert re.search(r"ratio with / without \(same log, same machine, same run\) +\d\.\d\d", out), out
    assert re.search(r"probes \(each a new member, then leaving Gold\) +20\n", out), out
