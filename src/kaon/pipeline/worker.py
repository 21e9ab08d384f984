"""The process stage as its own OS process (the default of `kaon serve`): its own GIL, its own core.

It polls the ingest log and exits when the parent asks (after catching up, bounded by the drain time) or
when the parent is gone (e.g. after `kill -9`).
"""

import os
import signal

from kaon.children import StopEvent
from kaon.clock import now_ms
from kaon.log.sqlite import SqliteLogReader
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.settings import Settings
from kaon.store.db import Database, DatabaseUrl


def run_process_stage(settings: Settings, stop: StopEvent, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    db = Database(DatabaseUrl.parse(settings.database_url))
    reader = SqliteLogReader(settings.log_dir)
    window = settings.dedup_window_ms
    stage = ProcessStage(db, reader, default_steps(dedup_window_ms=window),
                         chores=default_chores(dedup_window_ms=window))
    stage.run_until(lambda: stop.is_set() or os.getppid() != parent)
    if os.getppid() == parent:
        stage.drain(now_ms() + int(settings.drain_seconds * 1000))
    reader.close()
