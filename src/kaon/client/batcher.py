"""The background uploader thread: queues events, sends them in batches, and tells flushes how it went."""

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kaon.client.errors import (
    ClientClosedError,
    DeliveryError,
    EventTooLargeError,
    QueueFullError,
    RejectedError,
    RetriesExhaustedError,
)
from kaon.client.events import Queued
from kaon.client.packing import pack
from kaon.client.uploader import Sent, Uploader

logger = logging.getLogger("kaon.client")

ErrorCallback = Callable[[DeliveryError], None]


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What became of the events a flush waited for; `pending` is non-zero only when it timed out."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    errors: tuple[DeliveryError, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.pending == 0


@dataclass(slots=True)
class _Waiter:
    """A flush in progress: counts outcomes of events numbered up to `upto` until `expected` are in."""

    upto: int
    expected: int
    sent: int = 0
    failed: int = 0
    errors: list[DeliveryError] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.sent + self.failed >= self.expected

    def result(self) -> FlushResult:
        pending = self.expected - self.sent - self.failed
        return FlushResult(self.sent, self.failed, pending, tuple(self.errors))


class Batcher:
    def __init__(
        self,
        uploader: Uploader,
        *,
        environment: str,
        batch_size: int,
        flush_interval: float,
        max_queue: int,
        on_error: ErrorCallback | None,
    ) -> None:
        self._uploader = uploader
        self._environment = environment
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_queue = max_queue
        self._on_error = on_error
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, Queued]] = deque()
        self._seq = 0
        self._in_flight = 0
        self._waiters: list[_Waiter] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="kaon-client-uploader", daemon=True)
        _register(self)
        self._thread.start()

    def put(self, item: Queued) -> None:
        with self._cond:
            if self._closing:
                raise ClientClosedError("this Kaon client is closed")
            full = len(self._queue) >= self._max_queue
            if not full:
                self._seq += 1
                self._queue.append((self._seq, item))
                if len(self._queue) >= self._batch_size:
                    self._cond.notify_all()
        if full:
            self._report(QueueFullError(
                f"{self._max_queue} events already queued; event dropped",
                source_message_ids=(item.source_message_id,),
            ))

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Wait until every event queued so far is sent or has permanently failed (or `timeout` passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            waiter = _Waiter(self._seq, len(self._queue) + self._in_flight)
            if waiter.done or threading.current_thread() is self._thread:
                return waiter.result()  # from on_error, waiting would wait for ourselves
            self._waiters.append(waiter)
            self._cond.notify_all()
            while not waiter.done:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return waiter.result()

    def request_stop(self) -> None:
        """Ask the thread to send what is queued and stop, without waiting for it."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> FlushResult:
        """Send what is queued, stop the thread and close the connection."""
        self.request_stop()
        if threading.current_thread() is self._thread:
            return FlushResult()  # called from on_error: the thread stops once its queue is empty
        started = time.monotonic()
        result = self.flush(timeout)
        self._thread.join(None if timeout is None else max(0.0, timeout - (time.monotonic() - started)))
        _unregister(self)
        return result

    def _next_chunk(self) -> list[tuple[int, Queued]] | None:
        """Block until a chunk is due (batch_size queued, a flush or close waiting, or the interval
        elapsed); None when closing with nothing left."""
        with self._cond:
            deadline = time.monotonic() + self._interval
            while True:
                queued = len(self._queue)
                if queued >= self._batch_size or (queued and (self._waiters or self._closing)):
                    break
                if self._closing:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if queued:
                        break
                    deadline += self._interval
                    continue
                self._cond.wait(remaining)
            chunk = [self._queue.popleft() for _ in range(min(self._batch_size, queued))]
            self._in_flight += len(chunk)
            return chunk

    def _run(self) -> None:
        try:
            while (chunk := self._next_chunk()) is not None:
                self._deliver(chunk)
        finally:
            self._uploader.close()
            _unregister(self)

    def _deliver(self, chunk: list[tuple[int, Queued]]) -> None:
        seq_of = {item.source_message_id: seq for seq, item in chunk}
        try:
            packed = pack((item for _, item in chunk), self._environment)
        except Exception as exc:  # a bug here must not kill the thread or lose events silently
            logger.exception("kaon.client: could not build batches")
            self._finish(seq_of, [item for _, item in chunk], DeliveryError(
                f"could not build batches: {exc!r}", source_message_ids=tuple(seq_of)))
            return
        if packed.too_large:
            ids = tuple(item.source_message_id for item in packed.too_large)
            self._finish(seq_of, packed.too_large, EventTooLargeError(
                f"{len(ids)} event(s) larger than a 128 KB batch", source_message_ids=ids))
        for request in packed.requests:
            try:
                sent = self._uploader.send(request.body)
            except Exception as exc:
                logger.exception("kaon.client: unexpected error while sending")
                sent = Sent(False, 1, message=repr(exc))
            error = None if sent.delivered else _delivery_error(sent, request.items, request.batches)
            self._finish(seq_of, request.items, error)

    def _finish(self, seq_of: dict[str, int], items: Iterable[Queued], error: DeliveryError | None) -> None:
        seqs = [seq_of[item.source_message_id] for item in items]
        if error is not None:
            self._report(error)
        with self._cond:
            self._in_flight -= len(seqs)
            for waiter in self._waiters:
                mine = sum(1 for seq in seqs if seq <= waiter.upto)
                if not mine:
                    continue
                if error is None:
                    waiter.sent += mine
                else:
                    waiter.failed += mine
                    waiter.errors.append(error)
            self._waiters = [w for w in self._waiters if not w.done]
            self._cond.notify_all()

    def _report(self, error: DeliveryError) -> None:
        logger.warning("kaon.client: dropped %d event(s): %r", error.events, error)
        if self._on_error is None:
            return
        try:
            self._on_error(error)
        except Exception:
            logger.exception("kaon.client: on_error callback raised")


def _delivery_error(sent: Sent, items: tuple[Queued, ...], batches: int) -> DeliveryError:
    ids = tuple(item.source_message_id for item in items)
    what = f"{batches} batch(es), {len(ids)} event(s)"
    answer = f"HTTP {sent.status}" if sent.status is not None else "no answer"
    if sent.retryable:
        return RetriesExhaustedError(
            f"{what} not delivered after {sent.attempts} attempts ({answer}: {sent.message})",
            source_message_ids=ids, status=sent.status, server_code=sent.code)
    return RejectedError(f"{what} rejected ({answer}: {sent.message})",
                    source_message_ids=ids, status=sent.status, server_code=sent.code)


# Clients still open at interpreter exit are flushed then; held weakly so the registry keeps none alive
# (a running thread holds its own batcher), and dropped on close.
_open_batchers: "weakref.WeakSet[Batcher]" = weakref.WeakSet()
_registry_lock = threading.Lock()
_hook_installed = False


def _register(batcher: Batcher) -> None:
    global _hook_installed  # noqa: PLW0603 - one process-wide atexit hook, installed on first use
    with _registry_lock:
        _open_batchers.add(batcher)
        if not _hook_installed:
            atexit.register(_close_all_at_exit)
            _hook_installed = True


def _unregister(batcher: Batcher) -> None:
    with _registry_lock:
        _open_batchers.discard(batcher)


def _close_all_at_exit() -> None:
    with _registry_lock:
        batchers = list(_open_batchers)
    for batcher in batchers:
        batcher.close()
