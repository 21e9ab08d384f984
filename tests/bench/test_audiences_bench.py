"""The audiences benchmark runs end to end on a tiny world and checks its own results (so it cannot rot)."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "audiences.py"


def test_a_tiny_run_prints_every_figure_with_its_target() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--users", "150", "--events", "4000", "--rounds", "1",
                           "--latency-seconds", "2", "--latency-rate", "20", "--latency-warmup", "0.5"],
                          capture_output=True, text=True, timeout=300, check=False)
    # Exit 1 means an event was not stored, no membership changed, a probe never entered or a backfill fell short.
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "definitions: 20 audiences, 10 calculated attributes" in out
    assert re.search(r"throughput ratio with / without \(wall\) +\d+\.\d\d +>= 0\.7 +(met|NOT met)", out), out
    assert re.search(r"latency send -> change row readable, p99 \(s\) +\d+\.\d{3} +< 2 +(met|NOT met)", out), out
    assert "latency: 40 probe batches at 20/s for 2 s, 0 never entered" in out
    assert re.search(r"backfill calculated .* \(history events/s\) +[\d,]+ +>= 50,000 +(met|NOT met)", out), out
    assert re.search(r"backfill audience .* \(history events/s\) +[\d,]+ +>= 50,000 +(met|NOT met)", out), out
    assert re.search(r"state per profile \(bytes of profile_segments.state\) +[1-9][\d,]*", out), out
    assert re.search(r"peak RSS of a run without / with definitions \(MiB\) +\d+ / \d+", out), out
