"""The README's quick start, pasted into bash as a newcomer would, against a `kaon serve` set up like `make run`."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.server import KaonServer
from support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def quick_start() -> str:
    """The shell block the README says to paste in the second terminal."""
    text = README.read_text()
    section = text[text.index("In a second terminal"):]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README: no sh block after 'In a second terminal'"
    return match.group(1)


def make_run_data_dir() -> str:
    match = re.search(r"^DATA_DIR \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile: no DATA_DIR"
    return match.group(1)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory shaped like a checkout after `make run`: `.venv/bin/kaon` and the data dir."""
    kaon = tmp_path / ".venv" / "bin" / "kaon"
    kaon.parent.mkdir(parents=True)
    kaon.write_text(f'#!/bin/sh\nexec {sys.executable} -m kaon "$@"\n')
    kaon.chmod(0o755)
    return tmp_path


def test_the_quick_start_works_when_pasted(checkout: Path) -> None:
    data_dir = checkout / make_run_data_dir()
    made = subprocess.run([sys.executable, "-m", "kaon", "init", "--data-dir", str(data_dir), "--workspace", "demo"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    server = KaonServer(data_dir).start()  # its own `kaon init --json` finds the demo workspace
    try:
        script = quick_start().replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")
        assert "8080" not in script
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAON_")}

        def pasted() -> list[dict[str, object]]:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=checkout, env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"quick start failed:\n{done.stdout}\n{done.stderr}"
            events: list[dict[str, object]] = json.loads(done.stdout.splitlines()[-1])["events"]
            return events

        # The last line lists the Hello events: processing happens after the 202, so paste again until one shows.
        events = eventually(pasted, timeout=30, interval=0.5, what="the Hello event listed by the quick start")
        assert {e["event_name"] for e in events} == {"Hello"}
    finally:
        server.stop()
