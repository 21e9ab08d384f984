"""Group commit: many concurrent requests' appends share one durable write, done on a writer thread."""

import asyncio
import logging
import threading
from collections.abc import Callable

from kaon.log.base import Appender, LogEntry

_log = logging.getLogger("kaon.log")


class GroupCommitter:
    """Collects appends from the event loop and writes them in one transaction per round.

    `append` resolves only after the write is durable; `append_nowait` is for records the caller does
    not wait on (rejections). `on_commit` is called on the writer thread after each durable write.
    """

    def __init__(self, writer: Appender, on_commit: Callable[[], None] | None = None) -> None:
        self._writer = writer
        self._on_commit = on_commit
        self._pending: list[tuple[LogEntry, asyncio.Future[None] | None]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="kaon-log-writer", daemon=True)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread.start()

    async def append(self, entry: LogEntry) -> None:
        await self.append_many([entry])

    async def append_many(self, entries: list[LogEntry]) -> None:
        """Append entries in the same round (one durable commit): all of them are stored, or none."""
        assert self._loop is not None, "start() first"
        future: asyncio.Future[None] = self._loop.create_future()
        with self._cond:
            if self._closing:
                raise RuntimeError("ingest log is closing")
            # Only the last carries the future: the round that writes it writes the others too.
            self._pending.extend((entry, None) for entry in entries[:-1])
            self._pending.append((entries[-1], future))
            self._cond.notify()
        await future

    def append_nowait(self, entry: LogEntry) -> None:
        with self._cond:
            if self._closing:
                return
            self._pending.append((entry, None))
            self._cond.notify()

    def close(self) -> None:
        """Write everything pending, then stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                work, self._pending = self._pending, []
            error: BaseException | None = None
            try:
                self._writer.append([entry for entry, _ in work])
            except BaseException as exc:  # the waiting requests answer 5xx; nothing is acknowledged
                _log.exception("ingest log append failed")
                error = exc
            futures = [future for _, future in work if future is not None]
            if futures and self._loop is not None:
                self._loop.call_soon_threadsafe(_resolve, futures, error)
            if error is None and self._on_commit is not None:
                self._on_commit()


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(RuntimeError(f"ingest log append failed: {error}"))
