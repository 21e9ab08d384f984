"""Everything one `kaon serve` process runs, wired together: stores, ingest log, process stage, doors."""

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
from kaon.log.group_commit import GroupCommitter
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.pipeline.worker import run_process_stage
from kaon.settings import Settings
from kaon.store import processes
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore
from kaon.store.sealing import Sealer

_log = logging.getLogger("kaon.runtime")
TRUNCATE_EVERY_S = 5.0
BEAT_EVERY_S = 2.0
ROLE = "all"  # collect, process and deliver in this process and its children (role processes: docs/deploy.md)
PARTITION = "0"


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
        self.writer = SqliteLogWriter(settings.log_dir, PARTITION)
        # Before anything is appended or read: a replaced log file must not make new entries look processed.
        self.writer.align(OffsetStore(self.db.conn()).get(PARTITION))
        self.reader = SqliteLogReader(settings.log_dir)
        self.stage: ProcessStage | None = None
        self.stage_process: ChildProcess | None = None
        if settings.process_stage == "thread":
            self.stage = ProcessStage(
                self.db, self.reader, default_steps(dedup_window_ms=settings.dedup_window_ms),
                on_committed=self._committed, chores=default_chores(dedup_window_ms=settings.dedup_window_ms),
            )
        else:
            self.stage_process = ChildProcess("kaon-process", run_process_stage, settings)
        self.delivery = ChildProcess("kaon-deliver", run_delivery, settings)
        self.committer = GroupCommitter(self.writer, on_commit=self.stage.wake.set if self.stage else None)
        self.sealer = Sealer.for_data_dir(settings.data_dir)
        self.auth = Authenticator(self.db, settings.default_rate_limit, self.sealer)
        self.rejections = Rejections(self.committer)
        self.doors = Doors(self.auth, RateLimiter(), self.committer, self.rejections)
        self.collect = CollectApp(self.doors, IdSyncDoors(self.auth, self.db))
        self.ready = False
        self.process_id: str | None = None
        self._beat_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._truncated_at = 0.0
        self._truncate_lock = threading.Lock()

    def _committed(self, partition: str, seq: int) -> None:
        """Drop processed entries from our own partition now and then (its single writer does it)."""
        if partition != self.writer.partition or time.monotonic() - self._truncated_at < TRUNCATE_EVERY_S:
            return
        with self._truncate_lock:
            self._truncated_at = time.monotonic()
            self.writer.truncate(seq)

    def _truncate_processed(self) -> None:
        """With the stage in another process, read its committed offset and drop what it has processed."""
        seq = OffsetStore(self.db.conn()).get(self.writer.partition)
        if seq:
            self.writer.truncate(seq)

    async def start(self) -> None:
        self.committer.start(asyncio.get_running_loop())
        if self.stage is not None:
            self.stage.start()
        if self.stage_process is not None:
            self.stage_process.start()
        self.delivery.start()
        self.process_id = processes.register(self.db.conn(), ROLE,
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
        await asyncio.to_thread(self.delivery.stop, 30)
        if self.process_id is not None:
            processes.stopped(self.db.conn(), self.process_id, now_ms())
        self.writer.close()
        self.reader.close()
