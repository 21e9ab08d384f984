"""Reading event times, and naming the unreadable ones (field, bounded value, path, what was used instead)."""

import json
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from kaon.model import mparticle
from kaon.model.errors import PayloadError
from kaon.model.event_times import (
    MAX_MS,
    SHOWN_CHARS,
    TimeWarning,
    clear_unreadable_times,
    event_time,
    segment_warnings,
    to_ms,
)
from kaon.model.segment import decode_segment, to_batches

RECEIVED = 1_700_000_000_000


def warnings_of(kind: str, body: dict[str, Any]) -> list[TimeWarning]:
    return segment_warnings(decode_segment(kind, json.dumps(body).encode()), is_batch=kind == "batch")


def call(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Played", "userId": "u", "messageId": "m-1", **fields}


def test_readable_times() -> None:
    assert to_ms("2023-11-14T22:13:20Z") == RECEIVED
    assert to_ms(RECEIVED) == RECEIVED
    assert to_ms(RECEIVED / 1000) == RECEIVED
    assert to_ms(MAX_MS) == MAX_MS


def test_unreadable_times() -> None:
    for value in ("yesterday", "", "0001-01-01T00:00:00+01:00", 0, -5, MAX_MS + 1, True, "1970-01-01T00:00:00Z"):
        assert to_ms(value) is None, value


def test_a_skew_correction_out_of_range_keeps_the_uncorrected_time() -> None:
    # sentAt decades ahead would put the event before 1970: the client's own time is the better guess.
    assert event_time(None, "2023-11-14T21:13:15Z", "9999-01-01T00:00:00Z", RECEIVED) == RECEIVED - 3_605_000


def test_a_segment_call_names_each_unreadable_field_and_the_rule_used() -> None:
    found = warnings_of("track", call(timestamp="yesterday", originalTimestamp="2023-11-14T21:13:15Z",
                                      sentAt="2023-11-14T21:13:20Z"))
    assert [w.message() for w in found] == [
        "`timestamp` \"yesterday\" is not a readable time - at `$.timestamp`; the event time is `originalTimestamp`"
        " corrected for clock skew by `sentAt` (message id m-1)"]
    (only,) = warnings_of("track", call(originalTimestamp="soon", sentAt="2023-11-14T21:13:20Z"))
    assert only.field == "originalTimestamp" and only.used == "the receive time"
    found = warnings_of("track", call(originalTimestamp=12.5e20, sentAt="x"))
    assert [(w.field, w.value, w.where) for w in found] == [
        ("originalTimestamp", "1.25e21", "$.originalTimestamp"), ("sentAt", '"x"', "$.sentAt")]


def test_readable_absent_and_empty_times_give_no_warning() -> None:
    assert warnings_of("track", call()) == []
    assert warnings_of("track", call(timestamp="", sentAt=None)) == []
    assert warnings_of("track", call(timestamp="2023-11-14T22:13:20Z", originalTimestamp=RECEIVED)) == []


def test_batch_paths_and_the_batch_sent_at_reported_once() -> None:
    body = {"batch": [call(messageId="a"), call(messageId="b", timestamp="nope")], "sentAt": "later"}
    found = warnings_of("batch", body)
    assert [(w.field, w.where, w.message_id) for w in found] == [
        ("sentAt", "$.sentAt", "a"), ("timestamp", "$.batch[1].timestamp", "b")]


def test_a_long_value_is_shown_bounded() -> None:
    (warning,) = warnings_of("track", call(timestamp="9" * 5000))
    assert len(warning.value) == SHOWN_CHARS + 1 and warning.value.endswith("…")


def test_the_event_still_takes_the_next_rules_time() -> None:
    body = json.dumps(call(timestamp="yesterday")).encode()
    (batch,) = to_batches(decode_segment("track", body), RECEIVED, None)
    assert batch.events[0].data.timestamp_unixtime_ms == RECEIVED


def test_mparticle_out_of_range_times_are_cleared_and_named() -> None:
    body = {"environment": "production", "events": [
        {"event_type": "custom_event", "data": {"event_name": n, "custom_event_type": "other",
                                                "source_message_id": n, "timestamp_unixtime_ms": t}}
        for n, t in (("neg", -1), ("zero", 0), ("ok", RECEIVED), ("far", MAX_MS + 1))]}
    batch = mparticle.decode_batch(json.dumps(body).encode())
    found = clear_unreadable_times(batch, "$[3]")
    assert [(w.field, w.value, w.where, w.message_id) for w in found] == [
        ("timestamp_unixtime_ms", "-1", "$[3].events[0].data.timestamp_unixtime_ms", "neg"),
        ("timestamp_unixtime_ms", "0", "$[3].events[1].data.timestamp_unixtime_ms", "zero"),
        ("timestamp_unixtime_ms", str(MAX_MS + 1), "$[3].events[3].data.timestamp_unixtime_ms", "far")]
    mparticle.normalize(batch, received_ms=RECEIVED, ip=None, channel="server_to_server", seed="s")
    assert [e.data.timestamp_unixtime_ms for e in batch.events] == [RECEIVED, RECEIVED, RECEIVED, RECEIVED]


loose = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))


@given(timestamp=loose, original=loose, sent_at=loose)
def test_any_time_fields_give_a_readable_event_time_and_a_warning_for_each_unreadable_one(
        timestamp: Any, original: Any, sent_at: Any) -> None:
    fields = {"timestamp": timestamp, "originalTimestamp": original, "sentAt": sent_at}
    body = json.dumps(call(**{k: v for k, v in fields.items() if v is not None})).encode()
    try:
        payload = decode_segment("track", body)
    except PayloadError:  # a typed refusal at the door (e.g. a bool where a time goes), never a crash
        return
    found = segment_warnings(payload, is_batch=False)
    (batch,) = to_batches(payload, RECEIVED, None)
    time = batch.events[0].data.timestamp_unixtime_ms
    assert time is not None and 1 <= time <= MAX_MS
    wire = msgspec.structs.asdict(payload.calls[0])
    unreadable = {name for name, attr in (("timestamp", "timestamp"), ("originalTimestamp", "original_timestamp"),
                                          ("sentAt", "sent_at"))
                  if wire[attr] not in (None, "") and to_ms(wire[attr]) is None}
    assert {w.field for w in found} == unreadable
