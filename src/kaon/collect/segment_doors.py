"""Segment-spec front doors (/v1/batch, /v1/track, ...), also spoken by RudderStack's SDKs."""

from kaon.collect.auth import InputInfo, parse_basic
from kaon.collect.door import Answer, Doors
from kaon.collect.http import Receive, Scope, Send, header
from kaon.log.base import KIND_SEGMENT_PREFIX
from kaon.model import segment
from kaon.model.limits import MAX_REQUEST_BYTES, MAX_SEGMENT_BATCH_BYTES

SEGMENT_KINDS = ("batch", "track", "identify", "page", "screen", "group", "alias")
OK = Answer(200, b'{"success":true}')


class SegmentDoors:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    def _auth(self, scope: Scope, body_key: str | None) -> InputInfo:
        return self.doors.auth.write_key(parse_basic(header(scope, b"authorization")), body_key)

    async def call(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        def validate(body: bytes) -> str | None:
            return segment.decode_segment(kind, body).write_key

        await self.doors.accept(
            scope, receive, send, kind=f"{KIND_SEGMENT_PREFIX}{kind}", authenticate=self._auth,
            validate=validate, ok=OK, auth_after_body=header(scope, b"authorization") is None, cors=True,
            top_level_errors=True,
            body_limit=MAX_SEGMENT_BATCH_BYTES if kind == "batch" else MAX_REQUEST_BYTES,
        )
