"""The configuration-document doors (GET): a document for a valid, enabled, key-only input's key, else 404.

Unknown, disabled and secret-needing keys get the same 404 `CONFIG_NOT_FOUND`, so the answer tells a
prober nothing about which keys exist. Lookups use the doors' cached key table: no database access.
"""

import re
from collections.abc import Callable
from typing import Any

import msgspec

from kaon.clock import Clock, now_ms
from kaon.collect import config_documents as documents
from kaon.collect import cors
from kaon.collect.auth import Authenticator, InputInfo, parse_basic
from kaon.collect.door import error_body
from kaon.collect.errors import CollectError
from kaon.collect.http import Scope, Send, header, query_param, respond
from kaon.collect.rejections import Rejections

MAX_KEY_CHARS = 128
# Browsers may reuse a document for a few minutes; a disabled key's events are refused at the doors anyway.
CACHE_CONTROL = (b"cache-control", b"public, max-age=300")
_HOST = re.compile(r"^(?:[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_encoder = msgspec.json.Encoder()


def not_found(input: InputInfo | None = None) -> CollectError:
    return CollectError(404, "CONFIG_NOT_FOUND",
                        "No configuration for this key: it is unknown, disabled, or not a key-only (web) input.",
                        input=input)


def api_host(scope: Scope) -> str:
    """Kaon's host as the browser addressed it (Host header, validated), its path prefix, and `/v1`."""
    host = (header(scope, b"host") or b"").decode("latin-1")
    if not _HOST.match(host):
        raise CollectError(400, "INVALID_HOST", "The Host header is missing or not a host[:port].")
    root = str(scope.get("root_path", "")).rstrip("/")
    return f"{host}{root}/v1"


def _basic_user(scope: Scope) -> str | None:
    try:
        basic = parse_basic(header(scope, b"authorization"))
    except CollectError:  # not Basic: no key there
        return None
    return basic[0] if basic else None


class ConfigDoors:
    def __init__(self, auth: Authenticator, rejections: Rejections, clock: Clock = now_ms) -> None:
        self.auth = auth
        self.rejections = rejections
        self.clock = clock

    def _input(self, key: str | None) -> InputInfo:
        if not key or len(key) > MAX_KEY_CHARS:
            raise not_found()
        try:
            return self.auth.key_only(key)
        except CollectError as error:
            raise not_found(error.input) from None

    async def _answer(self, scope: Scope, send: Send, build: Callable[[], dict[str, Any]]) -> None:
        headers = cors.for_scope(scope)
        try:
            document = build()
        except CollectError as error:
            self.rejections.record_request(scope, error, self.clock())
            await respond(send, error.status, error_body(error.code, error.message), headers=headers)
            return
        body = b"" if scope["method"] == "HEAD" else _encoder.encode(document)
        await respond(send, 200, body, headers=[*headers, CACHE_CONTROL])

    async def mparticle(self, scope: Scope, send: Send, key: str) -> None:
        def build() -> dict[str, Any]:
            self._input(key)
            return documents.mparticle_config()

        await self._answer(scope, send, build)

    async def rudderstack(self, scope: Scope, send: Send) -> None:
        def build() -> dict[str, Any]:
            # Both SDKs send the key in the query and as the Basic user.
            key = query_param(scope, "writeKey") or _basic_user(scope)
            self._input(key)
            assert key is not None  # _input refuses a missing key
            return documents.rudderstack_source_config(key)

        await self._answer(scope, send, build)

    async def segment(self, scope: Scope, send: Send, key: str) -> None:
        def build() -> dict[str, Any]:
            self._input(key)
            return documents.segment_settings(key, api_host(scope), str(scope.get("scheme", "http")))

        await self._answer(scope, send, build)
