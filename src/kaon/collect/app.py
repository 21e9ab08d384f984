"""The collection ASGI app: routes front-door paths to their doors, everything else to `fallback`."""

from kaon.collect.door import Doors, RouteHandler, not_found
from kaon.collect.http import CORS_HEADERS, Receive, Scope, Send, cors_headers, respond
from kaon.collect.mparticle_doors import MParticleDoors
from kaon.collect.segment_doors import SEGMENT_KINDS, SegmentDoors


class CollectApp:
    def __init__(self, doors: Doors, fallback: RouteHandler | None = None) -> None:
        self.mparticle = MParticleDoors(doors)
        self.segment = SegmentDoors(doors)
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        handler = self.routes.get(path)
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
