"""Data catalog cost: the real ProcessStage over a pre-written log, with and without the catalog step.

Run: `.venv/bin/python bench/catalog.py [--events 100000] [--batch 10] [--rounds 3] [--default-gc]`.
Each run gets a fresh temporary store and a log holding the same entries: 60 custom event names with their own
attributes (values varied, some null, some numbers sent as strings), 30 screens, 3 commerce actions, user
attributes and identities in every batch, two inputs and two environments.
Runs alternate (without, with, without, with, ...) so that machine noise hits both; the best and median runs of
each are compared. The runs with the step also time it, so its share of the stage's time (which is its cost in
throughput) is measured within one run, immune to the machine's drift between runs: over the whole run, and over
its second half (the steady state, once the catalog has seen every data point and type). Exits 1 if a run did not
process every event or the catalog's counts do not add up.
"""

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from ingest import machine
from kaon.log.base import KIND_MPARTICLE_BATCH, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.catalog import ObserveCatalog
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_steps
from kaon.pipeline.work import Slice
from kaon.pipeline.worker import tune_gc
from kaon.store.db import Database, DatabaseUrl

WS = "ws_bench"
DAY = 86_400_000
NOW = 1_800_000_000_000


NAMES = 60  # custom event names; each has its own custom event type and pool of attributes
CUSTOM_TYPES = ("navigation", "transaction", "user_preference", "other")


def an_event(rng: random.Random, n: int) -> dict[str, Any]:
    roll = rng.random()
    common = {"source_message_id": f"m{n}", "timestamp_unixtime_ms": NOW + n}
    if roll < 0.1:
        return {"event_type": "screen_view", "data": {**common, "screen_name": f"Screen {rng.randrange(30)}",
                                                      "custom_attributes": {"tab": rng.choice("abc")}}}
    if roll < 0.2:
        return {"event_type": "commerce_event", "data": {**common, "currency_code": "USD", "product_action": {
            "action": rng.choice(["purchase", "add_to_cart", "view_detail"]), "total_amount": rng.random() * 100,
            "products": [{"id": f"p{rng.randrange(500)}", "price": 9.5, "quantity": 1}]},
            "custom_attributes": {"coupon": rng.choice(["", "SPRING", None])}}}
    name = rng.randrange(NAMES)
    # Each name has its own 4 attributes of fixed types, plus one optional; values vary, and now and then a
    # value is null or a number arrives as a string (as real apps send them).
    attrs: dict[str, Any] = {}
    for k in range(5 if rng.random() < 0.5 else 4):
        attr = f"attr_{name}_{k}"
        if rng.random() < 0.05:
            attrs[attr] = None
        elif k % 2:
            number = rng.randrange(1000)
            attrs[attr] = str(number) if rng.random() < 0.1 else number
        else:
            attrs[attr] = f"v{rng.randrange(1000)}"
    return {"event_type": "custom_event", "data": {
        **common, "event_name": f"Event {name}", "custom_event_type": CUSTOM_TYPES[name % len(CUSTOM_TYPES)],
        "custom_attributes": attrs}}


def write_log(directory: Path, events: int, batch_size: int, seed: int) -> None:
    rng = random.Random(seed)
    writer = SqliteLogWriter(directory, "0")
    entries, n = [], 0
    while n < events:
        size = min(batch_size, events - n)
        person = rng.randrange(5000)
        body = {
            "environment": "production" if person % 4 else "development",
            "user_identities": {"customer_id": f"cust-{person}", "email": f"p{person}@example.com"},
            "user_attributes": {"plan": rng.choice(["free", "pro"]), "age": 20 + person % 50},
            "events": [an_event(rng, n + i) for i in range(size)],
        }
        entries.append(LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=WS, input_id=f"in_{person % 2}",
                                received_ms=NOW + n, ip="10.0.0.1", body=json.dumps(body).encode()))
        n += size
        if len(entries) == 500:
            writer.append(entries)
            entries = []
    if entries:
        writer.append(entries)
    writer.close()


class TimedCatalog(ObserveCatalog):
    """The catalog step, timing itself (so its share of the stage's time is measured within the same run)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0

    def run(self, work: Slice) -> None:
        started = time.perf_counter()
        super().run(work)
        self.seconds += time.perf_counter() - started


class Run(NamedTuple):
    rate: float  # events per second of wall time
    cpu_rate: float  # events per second of this process's CPU time
    share: float  # the catalog step's share of the stage's time, whole run (0 without the step)
    steady_share: float  # the same over the second half of the run's slices


def run(template: Path, events: int, with_catalog: bool) -> Run:
    with tempfile.TemporaryDirectory(prefix="kaon-bench-catalog-") as tmp:
        root = Path(tmp)
        log_dir = root / "log"
        log_dir.mkdir()
        for file in template.iterdir():
            (log_dir / file.name).write_bytes(file.read_bytes())
        db = Database(DatabaseUrl.parse(f"sqlite:///{root / 'kaon.db'}"))
        reader = SqliteLogReader(log_dir)
        timed = TimedCatalog()
        steps = [timed if isinstance(s, ObserveCatalog) else s for s in default_steps(dedup_window_ms=DAY)
                 if with_catalog or not isinstance(s, ObserveCatalog)]
        stage = ProcessStage(db, reader, steps)
        slices: list[tuple[float, float]] = []  # (stage seconds, catalog seconds) per slice
        started, cpu = time.perf_counter(), time.process_time()
        while True:
            before, step_before = time.perf_counter(), timed.seconds
            if not stage.run_once():
                break
            slices.append((time.perf_counter() - before, timed.seconds - step_before))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        reader.close()
        conn = db.conn()
        stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        if stored != events:
            sys.exit(f"processed {stored} of {events} events")
        if with_catalog:
            counted = conn.execute(
                "SELECT SUM(t.count) FROM catalog_series s JOIN catalog_tallies t ON t.series_id = s.id"
                " WHERE s.point_id IN (SELECT point_id FROM catalog_points"
                " WHERE point_type NOT IN ('user_attributes', 'user_identities'))").fetchone()[0]
            if counted != events:
                sys.exit(f"catalog counted {counted} of {events} events")
        conn.close()
        late = slices[len(slices) // 2:]
        return Run(events / elapsed, events / cpu, timed.seconds / elapsed,
                   sum(step for _, step in late) / sum(total for total, _ in late))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10, help="events per batch (log entry)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--default-gc", action="store_true",
                        help="keep Python's default garbage-collector thresholds (the process stage tunes them)")
    parser.add_argument("--only", choices=("with", "without", "none"),
                        help="one run only, with or without the step, or none (only the log is written): for counting"
                             " instructions under valgrind, see docs/performance.md")
    args = parser.parse_args()
    if not args.default_gc:
        tune_gc()  # as the process stage's own process does
    if args.only is not None:
        with tempfile.TemporaryDirectory(prefix="kaon-bench-log-") as tmp:
            write_log(Path(tmp), args.events, args.batch, args.seed)
            if args.only != "none":
                print(run(Path(tmp), args.events, args.only == "with"))
        return
    print(f"machine: {machine()}")
    print(f"{args.events} events in batches of {args.batch}, {args.rounds} rounds, default slice size,"
          f" gc thresholds {gc.get_threshold()}")
    runs: dict[bool, list[Run]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="kaon-bench-log-") as tmp:
        template = Path(tmp)
        write_log(template, args.events, args.batch, args.seed)
        for round_ in range(args.rounds):
            for with_catalog in (False, True):
                found = run(template, args.events, with_catalog)
                runs[with_catalog].append(found)
                share = (f", catalog step {100 * found.share:.1f} % of the stage's time"
                         f" ({100 * found.steady_share:.1f} % over the second half)" if with_catalog else "")
                print(f"round {round_ + 1} {'with   ' if with_catalog else 'without'} catalog:"
                      f" {found.rate:,.0f} events/s, {found.cpu_rate:,.0f} events/CPU-s{share}")
    for label, field in (("wall", "rate"), ("CPU", "cpu_rate")):
        rates = {k: [getattr(r, field) for r in v] for k, v in runs.items()}
        best = {k: max(v) for k, v in rates.items()}
        median = {k: statistics.median(v) for k, v in rates.items()}
        print(f"\n[{label}] without catalog: best {best[False]:,.0f} events/s, median {median[False]:,.0f}")
        print(f"[{label}] with catalog:    best {best[True]:,.0f} events/s, median {median[True]:,.0f}")
        print(f"[{label}] with/without: best {best[True] / best[False]:.3f}, median {median[True] / median[False]:.3f}"
              f" (cost {100 * (1 - best[True] / best[False]):.1f} % best,"
              f" {100 * (1 - median[True] / median[False]):.1f} % median)")
    shares = [r.share for r in runs[True]]
    steady = [r.steady_share for r in runs[True]]
    print(f"\n[in-run] catalog step share of the stage's time (= its cost in throughput): median"
          f" {100 * statistics.median(shares):.1f} % (runs: {', '.join(f'{100 * x:.1f}' for x in shares)});"
          f" second half of each run: median {100 * statistics.median(steady):.1f} %"
          f" (runs: {', '.join(f'{100 * x:.1f}' for x in steady)})")


if __name__ == "__main__":
    main()
