"""The collection ASGI app: routes front-door paths to their doors, everything else to `fallback`.

Exact paths are one dict lookup (the event doors are all exact but the web SDK's, whose key is in the path);
only other paths pay for pattern matching. Every collect route's preflight is answered here, by the one CORS
policy (`cors.py`); unknown paths, refused preflights and wrong methods are recorded as rejections.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from kaon.collect import cors
from kaon.collect.config_doors import ConfigDoors
from kaon.collect.door import Doors, RouteHandler, error_body
from kaon.collect.errors import CollectError
from kaon.collect.http import Message, Receive, Scope, Send, header, read_body, respond
from kaon.collect.idsync_doors import IdSyncDoors
from kaon.collect.mparticle_doors import MParticleDoors
from kaon.collect.segment_doors import BEACON_PATH, SEGMENT_KINDS, SHORT_KINDS, SegmentDoors

_MODIFY = re.compile(r"^/v1/(-?\d+)/modify$")
_WEB_ALIAS = re.compile(r"^/(?:webevents/)?v1/identity/([^/]+)/[Aa]lias$")
# The mParticle web SDK's config (default host jssdkcdns.mparticle.com, CNAME prefix /tags) and Segment's.
_MPARTICLE_CONFIG = re.compile(r"^/(?:tags/)?JS/v2/([^/]+)/config$")
_SEGMENT_SETTINGS = re.compile(r"^/v1/projects/([^/]+)/settings$")
IDSYNC_PATHS = {"/v1/login": "login", "/v1/logout": "logout", "/v1/search": "search",
                "/v1/identity/alias": "alias"}
# Paths the admin app owns: its own 404s there are not collect refusals.
ADMIN_PREFIXES = ("/api/", "/userprofile/", "/opendsr/")
MAX_PATH_SHOWN = 200


@dataclass(frozen=True)
class Route:
    handler: RouteHandler
    methods: tuple[str, ...] = ("POST",)
    # False for server-to-server doors: they need the input's secret, so no browser may call them.
    browser: bool = True


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _unused(handler: Callable[[Scope, Send], Awaitable[None]]) -> RouteHandler:
    """A handler that never reads the body (GET documents)."""

    async def route(scope: Scope, _receive: Receive, send: Send) -> None:
        await handler(scope, send)

    return route


class CollectApp:
    def __init__(self, doors: Doors, idsync: IdSyncDoors | None = None, fallback: RouteHandler | None = None) -> None:
        self.doors = doors
        self.mparticle = MParticleDoors(doors)
        self.segment = SegmentDoors(doors)
        self.config = ConfigDoors(doors.auth, doors.rejections, doors.clock)
        self.idsync = idsync
        if idsync is not None and idsync.rejections is None:
            idsync.rejections = doors.rejections
        if idsync is not None and idsync.limiter is None:
            idsync.limiter = doors.limiter
        self.fallback = fallback
        self.routes: dict[str, Route] = {
            "/v2/events": Route(self.mparticle.events, browser=False),
            "/v2/bulkevents": Route(self.mparticle.bulk, browser=False),
            "/v2/bulkevents/historical": Route(self.mparticle.historical, browser=False),
            BEACON_PATH: Route(self.segment.beacon),
            "/sourceConfig": Route(_unused(self.config.rudderstack), ("GET", "HEAD")),
            "/sourceConfig/": Route(_unused(self.config.rudderstack), ("GET", "HEAD")),
        }
        for kind in SEGMENT_KINDS:
            self.routes[f"/v1/{kind}"] = Route(self._segment(kind))
        for short, kind in SHORT_KINDS.items():
            self.routes[f"/v1/{short}"] = Route(self._segment(kind))
        if idsync is not None:
            for prefix in ("", "/identity"):
                for path, operation in IDSYNC_PATHS.items():
                    self.routes[prefix + path] = Route(partial(idsync.handle, operation=operation))
                self.routes[f"{prefix}/v1/identify"] = Route(self._identify)

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
        return path in self.routes or self._match(path) is not None

    def _match(self, path: str) -> Route | None:
        """The route of a path with a variable part (a key or an mpid), or None."""
        key = self.web_key(path)
        if key is not None:
            return Route(partial(self.mparticle.web, key=key))
        if self.idsync is not None:
            inner = path.removeprefix("/identity") if path.startswith("/identity/v1/") else path
            if (match := _MODIFY.match(inner)) is not None:
                return Route(partial(self.idsync.handle, operation="modify", mpid=match.group(1)))
            if (match := _WEB_ALIAS.match(inner)) is not None:
                return Route(partial(self.idsync.handle, operation="alias", key_in_path=match.group(1)))
        if (match := _MPARTICLE_CONFIG.match(path)) is not None:
            return Route(_unused(partial(self.config.mparticle, key=match.group(1))), ("GET", "HEAD"))
        if (match := _SEGMENT_SETTINGS.match(path)) is not None:
            return Route(_unused(partial(self.config.segment, key=match.group(1))), ("GET", "HEAD"))
        return None

    async def _identify(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/v1/identify` is both IDSync's and the Segment spec's: IDSync sends mParticle headers or
        `known_identities`; everything else is a Segment identify call."""
        assert self.idsync is not None
        if header(scope, b"x-mp-key") or header(scope, b"x-mp-signature"):
            await self.idsync.handle(scope, receive, send, "identify")
            return
        try:
            body = await read_body(scope, receive, self.segment.body_limit("identify"))
        except CollectError as error:
            await self.segment.refuse_unread(scope, send, error)
            return
        if b'"known_identities"' in body:
            await self.idsync.handle(scope, receive, send, "identify", body=body)
        else:
            await self.segment.call(scope, _replay(body), send, "identify")

    async def _refuse(self, scope: Scope, send: Send, error: CollectError, headers: cors.Headers) -> None:
        self.doors.rejections.record_request(scope, error, self.doors.clock())
        extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
        await respond(send, error.status, error_body(error.code, error.message), headers=headers + extra)

    async def _preflight(self, scope: Scope, send: Send, route: Route) -> None:
        origin = header(scope, b"origin")
        try:
            if not route.browser:
                raise cors.refused("This door is server-to-server (it needs the input's secret): "
                                   "browsers may not call it.")
            answer = cors.preflight_headers(origin, header(scope, b"access-control-request-method"),
                                            header(scope, b"access-control-request-headers"),
                                            header(scope, b"access-control-request-private-network"))
        except CollectError as error:
            # No CORS headers on a refusal: the browser must not send the request.
            await self._refuse(scope, send, error, [])
            return
        await respond(send, 204, headers=answer)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        error = CollectError(404, "NOT_FOUND", f"No endpoint at {path[:MAX_PATH_SHOWN]}.")
        if self.fallback is None:
            await self._refuse(scope, send, error, cors.for_scope(scope))
            return
        if path.startswith(ADMIN_PREFIXES):
            await self.fallback(scope, receive, send)
            return

        async def watched(message: Message) -> None:
            # A path outside the admin app's own that it does not know either: count it as a collect 404.
            if message["type"] == "http.response.start" and message["status"] == 404:
                self.doors.rejections.record_request(scope, error, self.doors.clock())
            await send(message)

        await self.fallback(scope, receive, watched)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = self.routes.get(path) or self._match(path)
        if route is None:
            await self._not_found(scope, receive, send, path)
            return
        method: str = scope["method"]
        if method == "OPTIONS":
            await self._preflight(scope, send, route)
            return
        if method not in route.methods:
            allowed = ", ".join((*route.methods, "OPTIONS"))
            error = CollectError(405, "METHOD_NOT_ALLOWED", f"Use {' or '.join(route.methods)}.", {"allow": allowed})
            await self._refuse(scope, send, error, cors.for_scope(scope) if route.browser else [])
            return
        await route.handler(scope, receive, send)
