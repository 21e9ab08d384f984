"""Ingest log benchmark: entries/s appended to the SQLite log and to the PostgreSQL log, in one run.

Run: `.venv/bin/python bench/log_postgres.py [--seconds 3] [--group 50] [--body 600] [--dsn postgresql://…]`.
Each writer thread has its own log object (its own connection) and appends groups of `--group` entries, one
durable commit each (what group commit hands the log). SQLite: every thread appends to partition "0" (one
file, WAL, synchronous=FULL). PostgreSQL: entries keyed by 1,000 users over 8 partitions, fsync and
synchronous_commit on. Without --dsn a throwaway cluster is started (tests/support/postgres.py). Prints one
line per (log, threads) and the PostgreSQL/SQLite ratio per thread count; exits 1 if an append was lost.
"""

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from kaon.log.base import LogEntry
from kaon.log.postgres import PostgresLog
from kaon.log.sqlite import SqliteLog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

THREADS = (1, 4)


def entries(group: int, body: int, rng: random.Random) -> list[LogEntry]:
    return [LogEntry(kind="mparticle_batch", workspace_id="ws_bench", input_id="in_bench", received_ms=int(time.time()),
                     ip="10.0.0.1", body=b'{"events":[' + b"x" * body + b"]}", user_key=f"user-{rng.randrange(1000)}")
            for _ in range(group)]


def run(make: Callable[[], SqliteLog | PostgresLog], threads: int, seconds: float, group: int,
        body: int) -> tuple[float, float, int]:
    """(entries/s, appends/s, entries appended) with `threads` writers for `seconds`."""
    logs = [make() for _ in range(threads)]
    counts = [0] * threads
    start_gate = threading.Barrier(threads + 1)
    deadline = 0.0

    def write(i: int) -> None:
        rng = random.Random(i)
        prepared = [entries(group, body, rng) for _ in range(16)]
        start_gate.wait()
        n = 0
        while time.monotonic() < deadline:
            logs[i].append(prepared[n % len(prepared)])
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    start_gate.wait()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - began
    for log in logs:
        log.close()
    appends = sum(counts)
    return appends * group / elapsed, appends / elapsed, appends * group


def stored(log: SqliteLog | PostgresLog) -> int:
    total = 0
    for partition in log.partitions():
        after = 0
        while got := log.read(partition, after, 10_000):
            total += len(got)
            after = got[-1].seq
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--group", type=int, default=50, help="entries per append (one commit)")
    parser.add_argument("--body", type=int, default=600, help="bytes of body per entry")
    parser.add_argument("--dsn", help="an existing PostgreSQL database (default: start a throwaway cluster)")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    ok = True
    with ExitStack() as stack:
        dsn = args.dsn
        if dsn is None:
            from support.postgres import running_cluster

            cluster = stack.enter_context(running_cluster())
            # The test cluster runs with fsync off; a benchmark of durable appends needs it on.
            cluster.sql("ALTER SYSTEM SET fsync = on")
            cluster.sql("SELECT pg_reload_conf()")
            dsn = cluster.dsn()
        for threads in THREADS:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kaon-bench-log-")))
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            PostgresLog(dsn, schema=schema).close()  # create once, not racing in every thread
            SqliteLog(directory).writer().close()
            for name, make in (("sqlite", lambda d=directory: SqliteLog(d)),
                               ("postgresql", lambda s=schema: PostgresLog(dsn, schema=s))):
                per_s, appends_s, total = run(make, threads, args.seconds, args.group, args.body)
                check = make()
                kept = stored(check)
                check.close()
                ok &= kept == total
                results.append({"log": name, "threads": threads, "entries_per_s": round(per_s),
                                "appends_per_s": round(appends_s), "entries": total, "stored": kept})
                print(f"{name:<10} threads={threads}  {per_s:>10,.0f} entries/s  {appends_s:>8,.0f} appends/s"
                      f"  ({total} appended, {kept} stored)", flush=True)
    for threads in THREADS:
        by = {str(r["log"]): float(str(r["entries_per_s"])) for r in results if r["threads"] == threads}
        print(f"threads={threads}: postgresql/sqlite = {by['postgresql'] / by['sqlite']:.2f}")
    print(json.dumps({"group": args.group, "body": args.body, "seconds": args.seconds, "results": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
