"""uvicorn's HTTP protocol with Kaon's connection bounds: header size, header and body read timeouts, a cap on
open connections — so slow or half-sent requests cannot hold every file descriptor (see docs/security.md)."""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    max_header_bytes: int
    header_timeout: float
    body_timeout: float


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _refusal(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, _REASONS[status], len(body))) + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection: refused when too many are open; closed when its headers or body arrive too slowly."""

    limits: ConnectionLimits  # set on the subclass `protocol_class` makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._in_headers = True
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Dropped before it costs anything but the accepted socket, which closing frees at once.
            self.transport = transport
            transport.abort()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self not in self.connections:
            return  # dropped in connection_made
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            end = data.find(b"\r\n\r\n")  # what follows the headers in the same read is body, not counted
            self._header_bytes += len(data) if end < 0 else end
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(431, "HEADERS_TOO_LARGE", f"request line and headers are limited to "
                             f"{self.limits.max_header_bytes} bytes")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()
        self._arm(self.limits.body_timeout, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._in_headers = True
            self._header_bytes = 0
            self._arm(self.limits.header_timeout, "headers")

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired, seconds, part)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, seconds: float, part: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        if part == "headers" and self._header_bytes == 0:
            self.transport.close()  # an idle keep-alive connection: nothing to answer
            return
        self._refuse(408, "REQUEST_TIMEOUT", f"the request {part} did not arrive within {seconds:g} s")

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._disarm()
        if self.cycle is not None:
            self.cycle.disconnected = True  # the app's own answer, if any, is not sent after this one
        self.transport.write(_refusal(status, code, message))
        self.transport.close()


def protocol_class(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol uvicorn instantiates per connection, carrying these limits."""
    return type("KaonHttpProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
