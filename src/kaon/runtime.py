"""Everything one `kaon serve` process runs, wired together: stores, ingest log, process stage, doors.

Its role (`--role`, docs/deploy.md) decides which parts: `all` runs every one; on PostgreSQL a cluster runs
`collect` (the doors, appending to the partitioned log), `process` (a worker over the log partitions it
leases) and `deliver` (the delivery engine) processes, any number of each. Every role serves the admin API and
`/api/v1/health`, which says the role and whether its parts are running.
"""

import asyncio
import logging
import threading
import time

from kaon.children import ChildProcess
from kaon.clock import now_ms
from kaon.collect.app import CollectApp
from kaon.collect.auth import Authenticator
from kaon.collect.door import Doors
from kaon.collect.idsync_doors import IdSyncDoors
from kaon.collect.ratelimit import RateLimiter
from kaon.collect.rejections import Rejections
from kaon.delivery.process import run_delivery
from kaon.log.base import Appender
from kaon.log.group_commit import GroupCommitter
from kaon.log.postgres import PostgresLog
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.pipeline.worker import run_partition_worker, run_process_stage
from kaon.settings import Settings
from kaon.store import processes
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore
from kaon.store.sealing import Sealer

_log = logging.getLogger("kaon.runtime")
TRUNCATE_EVERY_S = 5.0
BEAT_EVERY_S = 2.0
PARTITION = "0"


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
        self.writer: SqliteLogWriter | None = None
        self.reader: SqliteLogReader | None = None
        self.pg_log: PostgresLog | None = None
        appender: Appender
        if settings.on_postgres:
            # The partitioned log in the same database: any number of collect processes append to it.
            self.pg_log = PostgresLog(settings.database_url, application_name=f"kaon-{settings.role}")
            appender = self.pg_log
        else:
            self.writer = SqliteLogWriter(settings.log_dir, PARTITION)
            # Before anything is appended or read: a replaced log file must not make new entries look processed.
            self.writer.align(OffsetStore(self.db.conn()).get(PARTITION))
            self.reader = SqliteLogReader(settings.log_dir)
            appender = self.writer
        self.stage: ProcessStage | None = None
        self.stage_process: ChildProcess | None = None
        if settings.runs_process:
            if settings.on_postgres:
                self.stage_process = ChildProcess("kaon-process", run_partition_worker, settings)
            elif settings.process_stage == "thread":
                assert self.reader is not None
                self.stage = ProcessStage(
                    self.db, self.reader, default_steps(dedup_window_ms=settings.dedup_window_ms),
                    on_committed=self._committed, chores=default_chores(dedup_window_ms=settings.dedup_window_ms),
                )
            else:
                self.stage_process = ChildProcess("kaon-process", run_process_stage, settings)
        self.delivery = ChildProcess("kaon-deliver", run_delivery, settings) if settings.runs_deliver else None
        self.committer = GroupCommitter(appender, on_commit=self.stage.wake.set if self.stage else None)
        self.sealer = Sealer.for_data_dir(settings.data_dir)
        self.auth = Authenticator(self.db, settings.default_rate_limit, self.sealer)
        self.rejections = Rejections(self.committer)
        self.doors = Doors(self.auth, RateLimiter(), self.committer, self.rejections, keyed=settings.on_postgres)
        self.collect = CollectApp(self.doors, IdSyncDoors(self.auth, self.db))
        self.ready = False
        self.process_id: str | None = None
        self._beat_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._truncated_at = 0.0
        self._truncate_lock = threading.Lock()

    def health(self) -> dict[str, str]:
        """What this process runs and whether each part is up (`/api/v1/health`): {part: running|stopped}."""
        def state(child: ChildProcess | None, in_thread: bool = False) -> str:
            if child is not None:
                return "running" if child.alive() else "stopped"
            return "running" if in_thread else "off"

        return {"collect": "running" if self.settings.runs_collect and self.ready else "off",
                "process": state(self.stage_process, in_thread=self.stage is not None),
                "deliver": state(self.delivery)}

    def _committed(self, partition: str, seq: int) -> None:
        """Drop processed entries from our own partition now and then (its single writer does it)."""
        if self.writer is None or partition != self.writer.partition or \
                time.monotonic() - self._truncated_at < TRUNCATE_EVERY_S:
            return
        with self._truncate_lock:
            self._truncated_at = time.monotonic()
            self.writer.truncate(seq)

    def _truncate_processed(self) -> None:
        """With the stage in another process, read its committed offset and drop what it has processed."""
        if self.writer is None:
            return  # the PostgreSQL log's workers truncate their own partitions
        seq = OffsetStore(self.db.conn()).get(self.writer.partition)
        if seq:
            self.writer.truncate(seq)

    async def start(self) -> None:
        self.committer.start(asyncio.get_running_loop())
        if self.stage is not None:
            self.stage.start()
        if self.stage_process is not None:
            self.stage_process.start()
        if self.delivery is not None:
            self.delivery.start()
        self.process_id = processes.register(self.db.conn(), self.settings.role,
                                             f"{self.settings.host}:{self.settings.port}", now_ms())
        self._tasks.append(asyncio.create_task(self._every_second()))
        self.ready = True

    async def _every_second(self) -> None:
        last_truncate = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            try:
                self.auth.refresh()
                self.rejections.flush(now_ms())
                if self.process_id is not None and time.monotonic() - self._beat_at >= BEAT_EVERY_S:
                    self._beat_at = time.monotonic()
                    await asyncio.to_thread(processes.beat, self.db.conn(), self.process_id, now_ms())
                if self.stage_process is not None and time.monotonic() - last_truncate > TRUNCATE_EVERY_S:
                    last_truncate = time.monotonic()
                    await asyncio.to_thread(self._truncate_processed)
            except Exception:
                _log.exception("periodic refresh failed")

    async def stop(self) -> None:
        """Drain: everything acknowledged is already durable; write pending records, let processing catch up."""
        self.ready = False
        for task in self._tasks:
            task.cancel()
        self.rejections.flush(now_ms())
        self.committer.close()
        if self.stage is not None:
            await asyncio.to_thread(self.stage.stop, int(self.settings.drain_seconds * 1000))
        if self.stage_process is not None:
            await asyncio.to_thread(self.stage_process.stop, self.settings.drain_seconds)
        if self.delivery is not None:
            await asyncio.to_thread(self.delivery.stop, 30)
        if self.process_id is not None:
            processes.stopped(self.db.conn(), self.process_id, now_ms())
        for log in (self.writer, self.reader, self.pg_log):
            if log is not None:
                log.close()
