"""The process stage as its own OS process (the default of `kaon serve`): its own GIL, its own core.

It polls the ingest log and exits when the parent asks (after catching up, bounded by the drain time) or
when the parent is gone (e.g. after `kill -9`).
"""

import gc
import os
import signal

from kaon.children import StopEvent
from kaon.clock import now_ms
from kaon.log.sqlite import SqliteLogReader
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.settings import Settings
from kaon.store.db import Database, DatabaseUrl

# The process stage allocates many short-lived objects per slice (decoded batches and what the steps derive from
# them); collecting every 700 allocations (Python's default) spent about 6 % of its time in the cyclic garbage
# collector, mostly re-scanning long-lived objects. Refcounting frees nearly all of it; cycles are rare.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Collect cyclic garbage less often, and never re-scan what exists at start (`gc.freeze`)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_process_stage(settings: Settings, stop: StopEvent, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
    reader = SqliteLogReader(settings.log_dir)
    window = settings.dedup_window_ms
    stage = ProcessStage(db, reader, default_steps(dedup_window_ms=window),
                         chores=default_chores(dedup_window_ms=window))
    tune_gc()
    stage.run_until(lambda: stop.is_set() or os.getppid() != parent)
    if os.getppid() == parent:
        stage.drain(now_ms() + int(settings.drain_seconds * 1000))
    reader.close()
