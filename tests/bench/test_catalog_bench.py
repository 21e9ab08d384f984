"""The catalog benchmark runs end to end on a small log and checks its own results (so it cannot rot)."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "catalog.py"


def test_a_small_run_processes_every_event_and_reports_the_steps_share() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--events", "3000", "--rounds", "1"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "[in-run] catalog step share of the stage's time" in done.stdout
    assert "with/without" in done.stdout


def test_a_single_run_for_instruction_counting() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--events", "1000", "--only", "with"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Run(rate=")
