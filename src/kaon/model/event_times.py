"""Event times: reading Segment's timestamps, and finding the unreadable ones that were replaced (warnings).

An unreadable time is never refused (the call is accepted) nor silently replaced: the event takes the next
rule's time (Segment: `timestamp`, else `originalTimestamp` corrected by `sentAt`, else the receive time;
mParticle: the receive time) and the process stage records an `INVALID_TIMESTAMP` warning naming the field
and its value. Readable means a time from 1 ms after the Unix epoch to the end of year 9999: 0 is what SDK
models send when nobody set the field, and later years break every date library downstream.
"""

from datetime import UTC, datetime
from typing import Final

import msgspec

from kaon.model.batch import Batch
from kaon.model.segment_wire import Loose, SegmentPayload

MIN_MS: Final = 1
MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_SECONDS_BELOW: Final = 100_000_000_000  # a Segment number below this is unix seconds (1e11 ms is 1973)
# How much of an unreadable value a warning shows.
SHOWN_CHARS: Final = 64


class TimeWarning(msgspec.Struct, kw_only=True, frozen=True):
    """One unreadable time: its field, a bounded rendering of its value, where it was, and what was used."""

    field: str
    value: str
    where: str
    used: str
    message_id: str | None = None

    def message(self) -> str:
        event = f" (message id {self.message_id})" if self.message_id else ""
        return (f"`{self.field}` {self.value} is not a readable time - at `{self.where}`; the event time is "
                f"{self.used}{event}")


def is_readable_ms(ms: int) -> bool:
    return MIN_MS <= ms <= MAX_MS


def to_ms(value: Loose) -> int | None:
    """Unix ms from an ISO-8601 string (naive means UTC) or a number; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ms = round(moment.timestamp() * 1000)
        except (ValueError, OverflowError):
            return None
    else:
        ms = round(value * 1000 if abs(value) < _SECONDS_BELOW else value)
    return ms if is_readable_ms(ms) else None


def event_time(timestamp: Loose, original: Loose, sent_at: Loose, received_ms: int) -> int:
    """Segment's event time: `timestamp`, else skew-corrected `originalTimestamp`, else the receive time."""
    explicit = to_ms(timestamp)
    if explicit is not None:
        return explicit
    original_ms = to_ms(original)
    if original_ms is None:
        return received_ms
    sent_ms = to_ms(sent_at)
    if sent_ms is None:
        return original_ms
    corrected = received_ms - (sent_ms - original_ms)
    # A sentAt decades off can push the correction out of range: then the uncorrected time is the better guess.
    return corrected if is_readable_ms(corrected) else original_ms


def _given(value: Loose) -> bool:
    """A value a client meant to set: present and not an empty string (treated as absent)."""
    return value is not None and value != ""


def _shown(value: Loose) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def _segment_rule(timestamp: Loose, original: Loose, sent_at: Loose) -> str:
    """In words, which of Segment's rules gave the event time."""
    if to_ms(timestamp) is not None:
        return "`timestamp`"
    if to_ms(original) is None:
        return "the receive time"
    if to_ms(sent_at) is None:
        return "`originalTimestamp` (not corrected for clock skew)"
    return "`originalTimestamp` corrected for clock skew by `sentAt`"


def segment_warnings(payload: SegmentPayload, *, is_batch: bool) -> list[TimeWarning]:
    """The unreadable times of a decoded Segment payload (`is_batch`: a /v1/batch body, paths `$.batch[i]`)."""
    out: list[TimeWarning] = []
    for index, call in enumerate(payload.calls):
        where = f"$.batch[{index}]" if is_batch else "$"
        own_sent = call.sent_at is not None
        sent_at = call.sent_at if own_sent else payload.sent_at
        fields = [("timestamp", call.timestamp, where), ("originalTimestamp", call.original_timestamp, where)]
        if own_sent:
            fields.append(("sentAt", call.sent_at, where))
        elif index == 0:
            fields.append(("sentAt", payload.sent_at, "$"))  # the batch's, reported once
        bad = [(name, value, path) for name, value, path in fields if _given(value) and to_ms(value) is None]
        if not bad:
            continue
        used = _segment_rule(call.timestamp, call.original_timestamp, sent_at)
        message_id = None if call.message_id is None else str(call.message_id)
        out.extend(TimeWarning(field=name, value=_shown(value), where=f"{path}.{name}", used=used,
                               message_id=message_id) for name, value, path in bad)
    return out


def clear_unreadable_times(batch: Batch, where: str) -> list[TimeWarning]:
    """mParticle events whose `timestamp_unixtime_ms` is out of range lose it (normalising then gives them the
    receive time); one warning each. `where` is the batch's JSON path (`$`, `$[2]`)."""
    out: list[TimeWarning] = []
    for index, event in enumerate(batch.events):
        data = event.data
        ms = data.timestamp_unixtime_ms
        if ms is not None and not is_readable_ms(ms):
            out.append(TimeWarning(
                field="timestamp_unixtime_ms", value=str(ms),
                where=f"{where}.events[{index}].data.timestamp_unixtime_ms", used="the receive time",
                message_id=data.source_message_id or None))
            data.timestamp_unixtime_ms = None
    return out
