"""The process-stage loop: claim a slice per partition, run the steps, commit effects + offset together."""

import logging
import threading
import time
from collections.abc import Callable, Sequence

from kaon.clock import Clock, now_ms
from kaon.log.base import LogReader, StoredEntry
from kaon.pipeline.step import Step
from kaon.pipeline.work import Slice
from kaon.store.db import Database
from kaon.store.metrics import MetricsStore
from kaon.store.offsets import OffsetStore
from kaon.store.sql import TRANSIENT_ERRORS, Conn
from kaon.store.tx import transaction

_log = logging.getLogger("kaon.pipeline")
CHORES_EVERY_MS = 10_000
# A chore gets the stage's connection (inside a transaction) and the time.
Chore = Callable[[Conn, int], object]


class ProcessStage:
    """Exactly-once processing: a slice's effects and its new offset commit in one transaction."""

    def __init__(
        self,
        db: Database,
        reader: LogReader,
        steps: Sequence[Step],
        *,
        slice_size: int = 256,
        clock: Clock = now_ms,
        on_committed: Callable[[str, int], None] | None = None,
        chores: Sequence[Chore] = (),
        partitions: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        self.db = db
        # Which partitions to read: all the reader has (one stage), or those this worker holds leases on.
        self.partitions = partitions or reader.partitions
        self.chores = list(chores)
        self._chores_at = 0
        self.reader = reader
        self.steps = list(steps)
        self.slice_size = slice_size
        self.clock = clock
        self.on_committed = on_committed
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_chores(self) -> None:
        """Timed work that must happen even when no events flow (every CHORES_EVERY_MS), one transaction."""
        now = self.clock()
        if not self.chores or now - self._chores_at < CHORES_EVERY_MS:
            return
        self._chores_at = now
        conn = self.db.conn()
        with transaction(conn):
            for chore in self.chores:
                chore(conn, now)

    def run_once(self) -> int:
        """Process at most one slice from each partition; returns how many entries were processed."""
        self.run_chores()
        conn = self.db.conn()
        offsets = OffsetStore(conn)
        done = 0
        for partition in self.partitions():
            after = offsets.get(partition)
            entries = self.reader.read(partition, after, self.slice_size)
            if not entries:
                continue
            try:
                self._apply(conn, partition, entries)
            except TRANSIENT_ERRORS:
                raise  # locked or out of disk: transient, the loop retries the same slice
            except Exception:
                _log.exception("slice %s:%s-%s failed; retrying entry by entry", partition,
                               entries[0].seq, entries[-1].seq)
                for entry in entries:
                    self._apply_alone(conn, partition, entry)
            done += len(entries)
            if self.on_committed is not None:
                self.on_committed(partition, entries[-1].seq)
        return done

    def _apply(self, conn: Conn, partition: str, entries: list[StoredEntry]) -> None:
        with transaction(conn):
            # Claim inside the write transaction: another stage (an old process still exiting, or a second
            # worker) may have applied some of these entries since we read them.
            committed = OffsetStore(conn).claim(partition)
            entries = [e for e in entries if e.seq > committed]
            if not entries:
                return
            work = Slice(tx=conn, entries=entries, now_ms=self.clock())
            for step in self.steps:
                step.run(work)
            MetricsStore(conn).add(work.counts)
            OffsetStore(conn).set(partition, entries[-1].seq)

    def _apply_alone(self, conn: Conn, partition: str, stored: StoredEntry) -> None:
        """One entry on its own; if it still fails, keep it as a rejection (with its body) and move on."""
        try:
            self._apply(conn, partition, [stored])
            return
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            _log.exception("log entry %s:%s cannot be processed; recorded as PROCESS_FAILED", partition, stored.seq)
            failure = f"{type(error).__name__}: {error}"
        entry = stored.entry
        with transaction(conn):
            if OffsetStore(conn).claim(partition) >= stored.seq:
                return
            work = Slice(tx=conn, entries=[stored], now_ms=self.clock())
            work.count(stored, "rejected", 1, "PROCESS_FAILED")
            metrics = MetricsStore(conn)
            metrics.record_rejection(
                workspace_id=entry.workspace_id, input_id=entry.input_id, received_ms=entry.received_ms,
                status=500, code="PROCESS_FAILED", message=f"Accepted but could not be processed: {failure}",
                count=1, body=entry.body,
            )
            metrics.add(work.counts)
            OffsetStore(conn).set(partition, stored.seq)

    def drain(self, deadline_ms: int) -> None:
        """Process until the log is empty or the deadline passes."""
        while self.clock() < deadline_ms and self.run_once():
            pass

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kaon-process", daemon=True)
        self._thread.start()

    def stop(self, drain_ms: int = 10_000) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join()
        self.drain(self.clock() + drain_ms)

    def run_until(self, stop: Callable[[], bool], idle_s: float = 0.02) -> None:
        """The loop of a stage running in its own process: poll the log until `stop()` says so."""
        while not stop():
            try:
                processed = self.run_once()
            except Exception:
                _log.exception("process stage slice failed; retrying")
                processed = 0
                time.sleep(1.0)
            if not processed:
                time.sleep(idle_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                processed = self.run_once()
            except Exception:
                _log.exception("process stage slice failed; retrying")
                processed = 0
                self._stop.wait(1.0)
            if not processed:
                self.wake.wait(0.2)
                self.wake.clear()
