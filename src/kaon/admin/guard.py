"""The admin API's outer guard: the token is checked before a body is read, and bodies are capped.

FastAPI reads (and parses) a request's body before it runs the route's dependencies, so without this guard an
unauthenticated caller could make Kaon read and parse megabytes. The guard answers first:
- a Kaon admin route (`/api/v1/...`, except the public ones: health, the API description and its Swagger UI)
  without a known Bearer token gets `401 UNAUTHORIZED` before one byte of the body is read;
- any admin request (the vendor routes too) whose body is over `max_body` bytes gets
  `413 REQUEST_TOO_LARGE`: at once when `Content-Length` says so, else as soon as the bytes read pass it.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from kaon.store.config import ConfigStore
from kaon.store.db import Database

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 16 * 1024 * 1024  # a data plan may be 10 MB as compact JSON; pretty-printed a little more
PREFIX = "/api/v1/"
PUBLIC = frozenset({"/api/v1/health", "/api/v1/openapi.json", "/api/v1/docs"})
PUBLIC_PREFIXES = ("/api/v1/docs/assets/",)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def needs_token(path: str) -> bool:
    return path.startswith(PREFIX) and path not in PUBLIC and not path.startswith(PUBLIC_PREFIXES)


async def _answer(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


class AdminGuard:
    def __init__(self, app: App, db: Database, max_body: int = MAX_BODY_BYTES) -> None:
        self.app, self.db, self.max_body = app, db, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if needs_token(scope["path"]):
            token = _bearer(scope)
            if token is None or ConfigStore(self.db.conn()).workspace_for_token(token) is None:
                message = "Missing Bearer admin token." if token is None else "Unknown admin token."
                await _answer(send, 401, "UNAUTHORIZED", message, [(b"www-authenticate", b"Bearer")])
                return
        length = _length(scope)
        if length is not None and length > self.max_body:
            await _answer(send, 413, "REQUEST_TOO_LARGE", f"Request body over {self.max_body} bytes.", [])
            return
        await self._capped(scope, receive, send)

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, with the body counted as it is read: past the cap, 413 and the app sees a disconnect."""
        read = 0
        refused = False

        async def counted() -> Message:
            nonlocal read, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_body:
                    refused = True
                    await _answer(send, 413, "REQUEST_TOO_LARGE", f"Request body over {self.max_body} bytes.", [])
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded_send)
