"""Raw ASGI plumbing for the hot path: headers, bounded (gzip) body reading, responses, CORS."""

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kaon.collect.errors import CollectError
from kaon.model.limits import MAX_REQUEST_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CORS_HEADERS = [
    (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
    (b"access-control-allow-headers", b"content-type, x-mp-key, authorization, accept, date, x-mp-signature"),
    (b"access-control-max-age", b"86400"),
]


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _too_large(size: int, limit: int) -> CollectError:
    return CollectError(
        413, "REQUEST_TOO_LARGE",
        f"Request body is over {size} bytes; the limit is {limit // 1024} KB ({limit} bytes) per request.",
    )


async def read_body(scope: Scope, receive: Receive, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """The request body, gunzipped when `Content-Encoding: gzip`; 413 past `limit` either way."""
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise CollectError(400, "CLIENT_DISCONNECTED", "The client disconnected before sending the body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    encoding = header(scope, b"content-encoding")
    if encoding is not None and encoding.strip().lower() == b"gzip":
        body = _gunzip(body, limit)
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=31)
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error as error:
        raise CollectError(400, "INVALID_GZIP", f"Request body is not valid gzip: {error}") from None
    if len(out) > limit:
        raise _too_large(len(out), limit)
    if not decompressor.eof:
        raise CollectError(400, "INVALID_GZIP", "Request body is truncated gzip.")
    return out


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    *,
    content_type: bytes = b"application/json",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    out = [(b"content-length", str(len(body)).encode())]
    if body:
        out.append((b"content-type", content_type))
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


def cors_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    origin = header(scope, b"origin")
    if origin is None:
        return []
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
