"""Segment-spec front doors (/v1/batch, /v1/track, ...), also spoken by RudderStack's SDKs."""

from kaon.collect.auth import InputInfo, parse_basic
from kaon.collect.door import Answer, Doors, error_body
from kaon.collect.errors import CollectError
from kaon.collect.http import Receive, Scope, Send, cors_headers, header, respond
from kaon.log.base import KIND_SEGMENT_PREFIX
from kaon.model import segment
from kaon.model.limits import MAX_REQUEST_BYTES, MAX_SEGMENT_BATCH_BYTES

SEGMENT_KINDS = ("batch", "track", "identify", "page", "screen", "group", "alias")
OK = Answer(200, b'{"success":true}')


class SegmentDoors:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    async def refuse_unread(self, scope: Scope, send: Send, error: CollectError) -> None:
        """Answer (and record) an error found while reading the body on the shared `/v1/identify` path."""
        self.doors.rejections.record(None, error, None, self.doors.clock())
        await respond(send, error.status, error_body(error.code, error.message, True), headers=cors_headers(scope))

    @staticmethod
    def body_limit(kind: str) -> int:
        return MAX_SEGMENT_BATCH_BYTES if kind == "batch" else MAX_REQUEST_BYTES

    def _auth(self, scope: Scope, body_key: str | None) -> InputInfo:
        return self.doors.auth.write_key(parse_basic(header(scope, b"authorization")), body_key)

    async def call(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        def validate(body: bytes) -> str | None:
            return segment.decode_segment(kind, body).write_key

        await self.doors.accept(
            scope, receive, send, kind=f"{KIND_SEGMENT_PREFIX}{kind}", authenticate=self._auth,
            validate=validate, ok=OK, auth_after_body=header(scope, b"authorization") is None, cors=True,
            top_level_errors=True,
            body_limit=self.body_limit(kind),
        )
