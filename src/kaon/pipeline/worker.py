"""The process stage as its own OS process (the default of `kaon serve`): its own GIL, its own core.

It polls the ingest log and exits when the parent asks (after catching up, bounded by the drain time) or
when the parent is gone (e.g. after `kill -9`).
"""

import gc
import logging
import os
import signal
import socket
import time

from kaon.children import StopEvent
from kaon.clock import now_ms
from kaon.log.leases import PartitionLeases
from kaon.log.postgres import PostgresLog
from kaon.log.sqlite import SqliteLogReader
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.settings import Settings
from kaon.store.db import Database, DatabaseUrl

# The process stage allocates many short-lived objects per slice (decoded batches and what the steps derive from
# them); collecting every 700 allocations (Python's default) spent about 6 % of its time in the cyclic garbage
# collector, mostly re-scanning long-lived objects. Refcounting frees nearly all of it; cycles are rare.
GC_THRESHOLDS = (20_000, 20, 20)
_log = logging.getLogger("kaon.pipeline")


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


LEASE_TTL_MS = 10_000
RENEW_EVERY_MS = 3_000
TRUNCATE_EVERY_MS = 5_000


class LeasedPartitions:
    """The partitions this worker holds leases on, renewed (and rebalanced) between slices."""

    def __init__(self, leases: PartitionLeases, owner: str, info: str, ttl_ms: int = LEASE_TTL_MS) -> None:
        self.leases, self.owner, self.info, self.ttl_ms = leases, owner, info, ttl_ms
        self.held: list[str] = []
        self._at = -RENEW_EVERY_MS

    def __call__(self) -> list[str]:
        now = time.monotonic_ns() // 1_000_000
        if now - self._at >= RENEW_EVERY_MS:
            try:
                self.held = self.leases.acquire(self.owner, self.ttl_ms, self.info)
            except Exception:
                _log.exception("lease renewal failed; processing nothing until it succeeds")
                self.held = []
            self._at = now
        return self.held


def run_partition_worker(settings: Settings, stop: StopEvent, parent: int) -> None:
    """A process worker on the PostgreSQL log: it processes the partitions it holds leases on.

    Several of them (in one `kaon serve` or many, on any machines) share the partitions; one that dies loses
    its leases after LEASE_TTL_MS and the others take them over. Exactly once still rests on the slice commit
    (effects and offset in one transaction, the offset row locked): a worker whose lease lapsed mid-slice
    finds the offset moved and applies nothing twice.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
    log = PostgresLog(settings.database_url, application_name="kaon-process")
    leases = PartitionLeases(log)
    owner = f"{socket.gethostname()}:{settings.port}:{os.getpid()}"
    held = LeasedPartitions(leases, owner, info=f"kaon serve --role {settings.role} on {settings.host}:"
                                                f"{settings.port}")
    truncated: dict[str, int] = {}

    def committed(partition: str, seq: int) -> None:
        if now_ms() - truncated.get(partition, 0) >= TRUNCATE_EVERY_MS:
            truncated[partition] = now_ms()
            log.truncate(partition, seq)

    window = settings.dedup_window_ms
    stage = ProcessStage(db, log, default_steps(dedup_window_ms=window), chores=default_chores(dedup_window_ms=window),
                         partitions=held, on_committed=committed)
    tune_gc()
    stage.run_until(lambda: stop.is_set() or os.getppid() != parent)
    if os.getppid() == parent:
        stage.drain(now_ms() + int(settings.drain_seconds * 1000))
        leases.release(owner)
    leases.close()
    log.close()
