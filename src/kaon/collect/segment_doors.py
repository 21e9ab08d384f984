"""Segment-spec front doors (/v1/batch, /v1/track, ... and analytics-next's short /v1/t, /v1/b, ...), also
spoken by RudderStack's SDKs, whose beacon transport posts to /beacon/v1/batch?writeKey=..."""

from kaon.collect import cors
from kaon.collect.auth import InputInfo, parse_basic
from kaon.collect.door import Answer, Doors, error_body
from kaon.collect.errors import CollectError, unauthorized
from kaon.collect.http import Receive, Scope, Send, header, query_param, respond
from kaon.log.base import KIND_SEGMENT_PREFIX
from kaon.model import segment
from kaon.model.limits import MAX_REQUEST_BYTES, MAX_SEGMENT_BATCH_BYTES

SEGMENT_KINDS = ("batch", "track", "identify", "page", "screen", "group", "alias")
# analytics-next posts each call to `/v1/` + the first letter of its type, and batches to `/v1/b`.
SHORT_KINDS = {kind[0]: kind for kind in SEGMENT_KINDS}
BEACON_PATH = "/beacon/v1/batch"
OK = Answer(200, b'{"success":true}')


class SegmentDoors:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    async def refuse_unread(self, scope: Scope, send: Send, error: CollectError) -> None:
        """Answer (and record) an error found while reading the body on the shared `/v1/identify` path."""
        self.doors.rejections.record(None, error, None, self.doors.clock())
        await respond(send, error.status, error_body(error.code, error.message, True), headers=cors.for_scope(scope))

    @staticmethod
    def body_limit(kind: str) -> int:
        return MAX_SEGMENT_BATCH_BYTES if kind == "batch" else MAX_REQUEST_BYTES

    def _auth(self, scope: Scope, body_key: str | None) -> InputInfo:
        return self.doors.auth.write_key(parse_basic(header(scope, b"authorization")), body_key)

    def _query_key(self, scope: Scope, _body_key: str | None) -> InputInfo:
        key = query_param(scope, "writeKey")
        if not key:
            raise unauthorized("Missing write key: beacon calls send it as `?writeKey=` in the URL.")
        return self.doors.auth.key_only(key)

    async def call(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        def validate(body: bytes) -> str | None:
            return segment.decode_segment(kind, body).write_key

        await self.doors.accept(
            scope, receive, send, kind=f"{KIND_SEGMENT_PREFIX}{kind}", authenticate=self._auth,
            validate=validate, ok=OK, auth_after_body=header(scope, b"authorization") is None, cors=True,
            top_level_errors=True,
            body_limit=self.body_limit(kind),
        )

    async def beacon(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`navigator.sendBeacon` batches: a text/plain `{"batch": [...]}` body, the write key in the query."""
        await self.doors.accept(
            scope, receive, send, kind=f"{KIND_SEGMENT_PREFIX}batch", authenticate=self._query_key,
            validate=lambda body: segment.decode_segment("batch", body).write_key, ok=OK, cors=True,
            top_level_errors=True, body_limit=MAX_SEGMENT_BATCH_BYTES,
        )
