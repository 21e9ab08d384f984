"""What every front door does: authenticate, rate-limit, read, validate, append durably, then answer."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from kaon.clock import Clock, now_ms
from kaon.collect import cors as cors_module
from kaon.collect import user_keys
from kaon.collect.auth import Authenticator, InputInfo
from kaon.collect.errors import CollectError
from kaon.collect.http import Receive, Scope, Send, client_ip, read_body, respond
from kaon.collect.ratelimit import RateLimiter
from kaon.collect.rejections import Rejections
from kaon.log.base import LogEntry
from kaon.log.group_commit import GroupCommitter
from kaon.model.errors import PayloadError
from kaon.model.limits import MAX_REQUEST_BYTES

_encoder = msgspec.json.Encoder()
_log = logging.getLogger("kaon.collect")

# Validates a body; returns the write key found in it (Segment) or None. Raises PayloadError.
Validator = Callable[[bytes], str | None]
# Authenticates a request, given the body's write key when the door allows one.
Authenticate = Callable[[Scope, str | None], InputInfo]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: bytes = b"application/json"


def error_body(code: str, message: str, top_level: bool = False) -> bytes:
    """mParticle's error shape; `top_level` adds `code`/`message` at the top, which Segment-spec SDKs read."""
    body: dict[str, object] = {"errors": [{"code": code, "message": message}]}
    if top_level:
        body = {"code": code, "message": message, **body}
    return _encoder.encode(body)


@dataclass
class Doors:
    """The shared machinery behind every collection endpoint."""

    auth: Authenticator
    limiter: RateLimiter
    committer: GroupCommitter
    rejections: Rejections
    clock: Clock = now_ms
    # The log has several partitions (PostgreSQL): route entries by user key (kaon.collect.user_keys).
    keyed: bool = False

    async def accept(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        kind: str,
        authenticate: Authenticate,
        validate: Validator,
        ok: Answer,
        auth_after_body: bool = False,
        cors: bool = False,
        top_level_errors: bool = False,
        body_limit: int = MAX_REQUEST_BYTES,
    ) -> None:
        received_ms = self.clock()
        info: InputInfo | None = None
        body: bytes | None = None
        extra = cors_module.for_scope(scope) if cors else []
        try:
            if not auth_after_body:
                info = authenticate(scope, None)
                self._rate_limit(info)
            body = await read_body(scope, receive, body_limit)
            body_key = validate(body)
            if auth_after_body:
                info = authenticate(scope, body_key)
                self._rate_limit(info)
            assert info is not None
            ip = client_ip(scope)
            parts = user_keys.split(kind, body) if self.keyed else [(None, body)]
            entries = [LogEntry(kind=kind, workspace_id=info.workspace_id, input_id=info.id,
                                received_ms=received_ms, ip=ip, body=part, user_key=key) for key, part in parts]
            try:
                await self.committer.append_many(entries)
            except RuntimeError as error:
                raise CollectError(503, "LOG_UNAVAILABLE", f"Could not store the request durably: {error}",
                                   {"retry-after": "1"}) from None
        except PayloadError as error:
            await self._refuse(send, info, CollectError(error.status, error.code, error.message), body,
                               received_ms, extra, top_level_errors)
            return
        except CollectError as error:
            await self._refuse(send, error.input or info, error, body, received_ms, extra, top_level_errors)
            return
        except Exception as error:  # a bug, not the client's fault: answer 500 and keep the evidence
            _log.exception("front door failed")
            failure = CollectError(500, "INTERNAL_ERROR", f"Kaon failed to handle this request: {type(error).__name__}")
            await self._refuse(send, info, failure, body, received_ms, extra, top_level_errors)
            return
        await respond(send, ok.status, ok.body, content_type=ok.content_type, headers=extra)

    def _rate_limit(self, info: InputInfo) -> None:
        wait = self.limiter.check(info.id, info.rate_limit_rps)
        if wait:
            raise CollectError(
                429, "RATE_LIMITED",
                f"Rate limit of {info.rate_limit_rps:g} requests/s for this input exceeded; retry after {wait}s.",
                {"retry-after": str(wait)},
            )

    async def _refuse(
        self, send: Send, info: InputInfo | None, error: CollectError, body: bytes | None, received_ms: int,
        extra: list[tuple[bytes, bytes]], top_level: bool,
    ) -> None:
        if error.code != "LOG_UNAVAILABLE":
            self.rejections.record(info, error, body, received_ms)
        headers = extra + [(k.encode(), v.encode()) for k, v in error.headers.items()]
        await respond(send, error.status, error_body(error.code, error.message, top_level), headers=headers)


RouteHandler = Callable[[Scope, Receive, Send], Awaitable[None]]
