"""The collection ASGI app: routes front-door paths to their doors, everything else to `fallback`."""

import re

from kaon.collect.door import Doors, RouteHandler, not_found
from kaon.collect.errors import CollectError
from kaon.collect.http import CORS_HEADERS, Message, Receive, Scope, Send, cors_headers, header, read_body, respond
from kaon.collect.idsync_doors import IdSyncDoors
from kaon.collect.mparticle_doors import MParticleDoors
from kaon.collect.segment_doors import SEGMENT_KINDS, SegmentDoors

_MODIFY = re.compile(r"^/v1/(-?\d+)/modify$")
_WEB_ALIAS = re.compile(r"^/(?:webevents/)?v1/identity/([^/]+)/[Aa]lias$")
IDSYNC_PATHS = {"/v1/login": "login", "/v1/logout": "logout", "/v1/search": "search",
                "/v1/identity/alias": "alias"}


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class CollectApp:
    def __init__(self, doors: Doors, idsync: IdSyncDoors | None = None, fallback: RouteHandler | None = None) -> None:
        self.mparticle = MParticleDoors(doors)
        self.segment = SegmentDoors(doors)
        self.idsync = idsync
        self.fallback = fallback
        self.routes: dict[str, RouteHandler] = {
            "/v2/events": self.mparticle.events,
            "/v2/bulkevents": self.mparticle.bulk,
            "/v2/bulkevents/historical": self.mparticle.historical,
        }
        for kind in SEGMENT_KINDS:
            self.routes[f"/v1/{kind}"] = self._segment(kind)

    def _segment(self, kind: str) -> RouteHandler:
        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            await self.segment.call(scope, receive, send, kind)

        return handler

    def web_key(self, path: str) -> str | None:
        if path.startswith(("/v3/JS/", "/webevents/v3/JS/")) and path.endswith("/events"):
            key = path.removeprefix("/webevents").removeprefix("/v3/JS/").removesuffix("/events")
            return key if key and "/" not in key else None
        return None

    def handles(self, path: str) -> bool:
        return path in self.routes or self.web_key(path) is not None

    async def _identity(self, scope: Scope, receive: Receive, send: Send, path: str) -> bool:
        """IDSync and alias paths (also under the CNAME prefix `/identity`); False when not one."""
        if self.idsync is None:
            return False
        if path.startswith("/identity/v1/"):
            path = path.removeprefix("/identity")
        operation = IDSYNC_PATHS.get(path)
        if operation is not None:
            await self.idsync.handle(scope, receive, send, operation)
            return True
        if (match := _MODIFY.match(path)) is not None:
            await self.idsync.handle(scope, receive, send, "modify", mpid=match.group(1))
            return True
        if (match := _WEB_ALIAS.match(path)) is not None:
            await self.idsync.handle(scope, receive, send, "alias", key_in_path=match.group(1))
            return True
        if path != "/v1/identify":
            return False
        # `/v1/identify` is both IDSync's and the Segment spec's: IDSync sends mParticle headers or
        # `known_identities`; everything else is a Segment identify call.
        if scope["method"] == "OPTIONS" or header(scope, b"x-mp-key") or header(scope, b"x-mp-signature"):
            await self.idsync.handle(scope, receive, send, "identify")
            return True
        if scope["method"] != "POST":
            return False
        try:
            body = await read_body(scope, receive, self.segment.body_limit("identify"))
        except CollectError as error:
            await self.segment.refuse_unread(scope, send, error)
            return True
        if b'"known_identities"' in body:
            await self.idsync.handle(scope, receive, send, "identify", body=body)
        else:
            await self.segment.call(scope, _replay(body), send, "identify")
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        handler = self.routes.get(path)
        # The event doors are exact paths: only other paths (and /v1/identify, shared with IDSync) pay for
        # the identity routing's pattern matching.
        if (handler is None or path == "/v1/identify") and await self._identity(scope, receive, send, path):
            return
        key = None if handler is not None else self.web_key(path)
        if handler is None and key is None:
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
            else:
                await not_found(send, path)
            return
        if method == "OPTIONS":
            await respond(send, 204, headers=cors_headers(scope) + CORS_HEADERS)
            return
        if method != "POST":
            await respond(send, 405, b'{"errors":[{"code":"METHOD_NOT_ALLOWED","message":"Use POST."}]}',
                          headers=[(b"allow", b"POST, OPTIONS")])
            return
        if key is not None:
            await self.mparticle.web(scope, receive, send, key)
        else:
            assert handler is not None
            await handler(scope, receive, send)
