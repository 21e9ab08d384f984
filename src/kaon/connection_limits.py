"""Bounds on every HTTP connection `kaon serve` accepts, so slow or half-sent requests cannot starve it.

uvicorn (httptools) on its own waits forever for a request's headers and body, and keeps accepting until the
process runs out of file descriptors; then every request fails, health included. This protocol adds:
- a **header timeout**: a request's line and headers must arrive within `header_timeout_s` of the connection
  (or of the request's first byte on a kept-alive connection), else `408` and the connection is closed;
- a **body timeout**: its body must arrive within `body_timeout_s` of its headers, else `408` and closed;
- a **header size cap**: request line and headers over `max_header_bytes` get `431` and the connection closed;
- a **connection cap**: past `max_connections` open connections, the oldest one still waiting for its headers
  is closed to make room (a slowloris attacker's, as real clients send headers at once); when every
  connection is busy with a real request, the new one gets `503` and is closed.
"""

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FD_RESERVE = 256  # descriptors kept for the database, the ingest log, outbound connections and child pipes


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_header_bytes: int = 32 * 1024
    max_connections: int = 4096


def raise_file_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(wanted: int | None, file_limit: int) -> int:
    """`wanted` (or 10,000), never more than the descriptors left after the reserve, and at least 16."""
    return max(16, min(wanted or 10_000, file_limit - FD_RESERVE))


def _response(status: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


_TIMEOUT = _response(b"408 Request Timeout", b'{"errors":[{"code":"REQUEST_TIMEOUT","message":'
                                             b'"The request was not received in time."}]}')
_HEADERS_TOO_LARGE = _response(b"431 Request Header Fields Too Large", b'{"errors":[{"code":"HEADERS_TOO_LARGE",'
                                                                      b'"message":"Request headers too large."}]}')
_BUSY = _response(b"503 Service Unavailable", b'{"errors":[{"code":"SERVER_BUSY","message":'
                                             b'"Too many open connections; try again."}]}')


class BoundedProtocol(HttpToolsProtocol):
    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opened = 0.0
        self._awaiting_headers = True
        self._header_bytes = 0
        self._headers_too_large = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # Connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened = self.loop.time()
        self._arm_header_timer()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _make_room(self) -> None:
        waiting = [c for c in self.connections if isinstance(c, BoundedProtocol) and c is not self
                   and c._awaiting_headers and not c.transport.is_closing()]
        if waiting:
            min(waiting, key=lambda c: c._opened).transport.close()
        else:
            self._refuse(_BUSY)

    def _refuse(self, response: bytes) -> None:
        if not self.transport.is_closing():
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(response)
            self.transport.close()

    # Timers
    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._header_timed_out)

    def _header_timed_out(self) -> None:
        if self._awaiting_headers:
            self._refuse(_TIMEOUT)

    def _body_timed_out(self) -> None:
        if self.cycle is not None and self.cycle.more_body:
            self._refuse(_TIMEOUT)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        self._header_bytes = 0
        if self.cycle is None or self.cycle.response_complete:  # not a pipelined request behind a busy one
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            self._headers_too_large = True
            raise httptools.HttpParserCallbackError("request headers too large")

    def send_400_response(self, msg: str) -> None:
        if self._headers_too_large:
            self._refuse(_HEADERS_TOO_LARGE)
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedProtocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type("KaonHttpProtocol", (BoundedProtocol,), {"limits": limits})
