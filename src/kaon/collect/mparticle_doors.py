"""mParticle front doors: server Events API (/v2/events, /v2/bulkevents[/historical]) and web SDK v3."""

from kaon.clock import now_ms
from kaon.collect.auth import InputInfo, parse_basic
from kaon.collect.door import Answer, Doors
from kaon.collect.http import Receive, Scope, Send, header
from kaon.log import base as log
from kaon.model import mparticle
from kaon.model.errors import PayloadError
from kaon.model.event_times import is_readable_ms

ACCEPTED = Answer(202)
HISTORICAL_MIN_AGE_MS = 72 * 3_600_000


def _validate_one(body: bytes) -> str | None:
    mparticle.decode_batch(body)
    return None


def _validate_bulk(body: bytes) -> str | None:
    mparticle.decode_bulk(body)
    return None


def _validate_historical(body: bytes) -> str | None:
    """Historical batches: every batch has events, every event a timestamp older than 72 hours."""
    newest_allowed = now_ms() - HISTORICAL_MIN_AGE_MS
    for b, batch in enumerate(mparticle.decode_bulk(body)):
        if not batch.events:
            raise PayloadError("HISTORICAL_NO_EVENTS", f"Historical batch has no events - at `$[{b}].events`")
        for e, event in enumerate(batch.events):
            ts = event.data.timestamp_unixtime_ms
            where = f"$[{b}].events[{e}].data.timestamp_unixtime_ms"
            # A historical event's time is the point of the call: an unreadable one (0, negative, after year
            # 9999) is refused here, where other doors accept it and use the receive time with a warning.
            if ts is None or not is_readable_ms(ts):
                raise PayloadError("HISTORICAL_TIMESTAMP_REQUIRED",
                                   f"Historical events need a readable timestamp_unixtime_ms - at `{where}`")
            if ts > newest_allowed:
                raise PayloadError("HISTORICAL_TOO_RECENT",
                                   f"Historical events must be older than 72 hours - at `{where}`")
    return None


class MParticleDoors:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    def _basic(self, scope: Scope, _body_key: str | None) -> InputInfo:
        return self.doors.auth.basic(parse_basic(header(scope, b"authorization")))

    async def events(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.doors.accept(scope, receive, send, kind=log.KIND_MPARTICLE_BATCH, authenticate=self._basic,
                                validate=_validate_one, ok=ACCEPTED)

    async def bulk(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.doors.accept(scope, receive, send, kind=log.KIND_MPARTICLE_BULK, authenticate=self._basic,
                                validate=_validate_bulk, ok=ACCEPTED)

    async def historical(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.doors.accept(scope, receive, send, kind=log.KIND_MPARTICLE_HISTORICAL,
                                authenticate=self._basic, validate=_validate_historical,
                                ok=ACCEPTED)

    async def web(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        """`/v3/JS/{key}/events`: the key in the path is the only credential (text/plain body)."""
        await self.doors.accept(
            scope, receive, send, kind=log.KIND_WEB_BATCH,
            authenticate=lambda _s, _k: self.doors.auth.key_only(key),
            validate=_validate_one, ok=ACCEPTED, cors=True,
        )
