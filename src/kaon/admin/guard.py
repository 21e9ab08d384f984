"""The admin surface's front guard (ASGI, before FastAPI reads anything): the token is checked before the body
is read, and bodies are capped in size and read time.

FastAPI reads and parses a body before it resolves the dependency that checks the token, so without this an
anonymous caller could make Kaon read (and parse) any amount of JSON.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import msgspec

from kaon.store.db import Database
from kaon.store.tokens import TokenStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/api/v1"
# Answered to anyone (docs/security.md, "The admin surface"): what they show is in Kaon's public source.
PUBLIC = frozenset({f"{PREFIX}/health", f"{PREFIX}/docs", f"{PREFIX}/openapi.json", f"{PREFIX}/directory"})
PUBLIC_PREFIXES = (f"{PREFIX}/docs/assets/",)


def is_public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)


async def _answer(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = msgspec.json.encode({"errors": [{"code": code, "message": message}]})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


class AdminGuard:
    def __init__(self, app: App, db: Database, max_body_bytes: int) -> None:
        self.app = app
        self.db = db
        self.max_body_bytes = max_body_bytes

    def _token_usable(self, header: bytes | None) -> bool:
        if header is None or header[:7].lower() != b"bearer ":
            return False
        try:
            token = header[7:].decode("ascii").strip()
        except UnicodeDecodeError:
            return False
        return TokenStore(self.db.conn()).authenticate(token, touch=False) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path: str = scope["path"]
        if path.startswith(f"{PREFIX}/") and not is_public(path) and scope["method"] != "OPTIONS":
            usable = await anyio.to_thread.run_sync(self._token_usable, headers.get(b"authorization"))
            if not usable:
                refusal = ("Missing Bearer admin token." if b"authorization" not in headers
                           else "Unknown, revoked or expired admin token.")
                await _answer(send, 401, "UNAUTHORIZED", refusal, [(b"www-authenticate", b"Bearer")])
                return
        limit = self.max_body_bytes
        too_large = (f"an admin request body is at most {limit} bytes (KAON_ADMIN_MAX_BODY_BYTES)")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _answer(send, 413, "ADMIN_BODY_TOO_LARGE", too_large, [])
            return
        # Read here, within the cap, so the app never sees more than `limit` bytes (chunked bodies included).
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _answer(send, 413, "ADMIN_BODY_TOO_LARGE", too_large, [])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)
