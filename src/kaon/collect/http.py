"""Raw ASGI plumbing for the hot path: headers, bounded query and (gzip) body reading, responses."""

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from kaon.collect.errors import CollectError
from kaon.model.limits import MAX_REQUEST_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Longer than any real SDK's query (RudderStack's sourceConfig asks ~150 bytes); bounds what is parsed.
MAX_QUERY_BYTES = 2048
MAX_QUERY_FIELDS = 32


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def query_param(scope: Scope, name: str) -> str | None:
    """The first value of `name` in the query string; 414 `QUERY_TOO_LONG` past MAX_QUERY_BYTES."""
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return None
    if len(raw) > MAX_QUERY_BYTES:
        raise CollectError(414, "QUERY_TOO_LONG", f"Query string over {MAX_QUERY_BYTES} bytes.")
    try:
        values = parse_qs(raw.decode("latin-1"), max_num_fields=MAX_QUERY_FIELDS).get(name)
    except ValueError:  # more fields than allowed
        raise CollectError(414, "QUERY_TOO_LONG", f"More than {MAX_QUERY_FIELDS} query fields.") from None
    return values[0] if values else None


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

