"""Process-stage catch-up on SQLite: events/s of the steps and their commits over a log filled in advance.

    .venv/bin/python bench/process_stage.py [--batches 6000] [--runs 3] [--compare /path/to/other/src]

Fills a fresh data directory's SQLite ingest log with mParticle batches (10 events each, 500 users), then times
one `ProcessStage.drain` over it, in a subprocess per run. With `--compare`, the same runs alternate with
another source tree (e.g. a `git worktree` of an earlier commit: `--compare /tmp/kaon-before/src`), and the
ratio of the medians is printed: this tree / the other, on the same machine in the same run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(batches: int) -> float:
    """Events/s of one catch-up, in this process (called in a subprocess with the tree under test)."""
    from kaon.log.base import LogEntry
    from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
    from kaon.pipeline.runner import ProcessStage
    from kaon.pipeline.steps import default_chores, default_steps
    from kaon.store.db import Database, DatabaseUrl

    data_dir = Path(tempfile.mkdtemp(prefix="kaon-stage-"))
    created = json.loads(subprocess.run([sys.executable, "-m", "kaon", "init", "--data-dir", str(data_dir), "--json"],
                                        capture_output=True, text=True, check=True).stdout)
    server = next(i for i in created["inputs"] if i["platform"] == "server")
    url = DatabaseUrl.parse(f"sqlite:///{data_dir / 'kaon.db'}")
    try:
        db = Database(url, data_dir=data_dir)  # type: ignore[call-arg,unused-ignore]
    except TypeError:  # an older tree's Database takes no data_dir
        db = Database(url)
    writer = SqliteLogWriter(data_dir / "log", "0")
    event = {"event_type": "custom_event", "data": {"event_name": "bench", "custom_event_type": "other",
                                                    "custom_attributes": {"i": "1", "plan": "gold"}}}
    now = int(time.time() * 1000)
    entries = [LogEntry(kind="mparticle_batch", workspace_id=created["workspace_id"], input_id=server["id"],
                        received_ms=now, body=json.dumps({
                            "environment": "production", "user_identities": {"customer_id": f"c{k % 500}"},
                            "events": [event] * 10}).encode()) for k in range(batches)]
    for start in range(0, batches, 500):
        writer.append(entries[start:start + 500])
    window = 86_400_000
    stage = ProcessStage(db, SqliteLogReader(data_dir / "log"), default_steps(dedup_window_ms=window),
                         chores=default_chores(dedup_window_ms=window))
    started = time.perf_counter()
    stage.drain(now + 600_000)
    return batches * 10 / (time.perf_counter() - started)


def measure(src: Path, batches: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, __file__, "--one", str(batches)], capture_output=True, text=True,
                          env=env, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another tree's src directory, measured alternately")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(one_run(args.one))
        return 0
    here: list[float] = []
    other: list[float] = []
    for _ in range(args.runs):
        here.append(measure(ROOT / "src", args.batches))
        if args.compare:
            other.append(measure(args.compare, args.batches))
    print(f"this tree:  {', '.join(f'{r:,.0f}' for r in here)} events/s (median {statistics.median(here):,.0f})")
    if other:
        print(f"{args.compare}: {', '.join(f'{r:,.0f}' for r in other)} events/s "
              f"(median {statistics.median(other):,.0f})")
        print(f"ratio this / other: {statistics.median(here) / statistics.median(other):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
