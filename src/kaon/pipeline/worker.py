"""The process stage as its own OS process (the default of `kaon serve`): its own GIL, its own core.

The parent starts it with `spawn_stage`; it polls the ingest log, and exits when the parent asks it to
(after catching up, bounded by the drain time) or when the parent is gone (e.g. after `kill -9`).
"""

import logging
import multiprocessing
import multiprocessing.synchronize
import os
import signal

from kaon.clock import now_ms
from kaon.log.sqlite import SqliteLogReader
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.settings import Settings
from kaon.store.db import Database, DatabaseUrl

_log = logging.getLogger("kaon.pipeline")


def _run(settings: Settings, stop: multiprocessing.synchronize.Event, parent: int) -> None:
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


class StageProcess:
    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._process = context.Process(target=_run, args=(settings, self._stop, os.getpid()),
                                        name="kaon-process", daemon=False)

    def start(self) -> None:
        self._process.start()

    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout_s: float) -> None:
        """Ask the stage to catch up and exit; wait for it (a little longer than its own drain bound)."""
        self._stop.set()
        self._process.join(timeout_s + 10)
        if self._process.is_alive():
            _log.error("process stage did not stop in time; terminating it (its work resumes at restart)")
            self._process.terminate()
            self._process.join(10)
