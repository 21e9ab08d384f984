"""The mParticle adapter: decode (strict shape, stable codes, JSON paths) and normalise (lenient fixes)."""

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaon.model import mparticle
from kaon.model.batch import Batch
from kaon.model.errors import LimitExceeded, PayloadError
from kaon.model.events import CrashReport, CrashReportData, CustomEvent, ScreenView, SessionStart

RECEIVED = 1_700_000_000_000


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def custom(name: str = "e", **data: Any) -> dict[str, Any]:
    return {"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other", **data}}


def refused(call: Any, raw: bytes) -> PayloadError:
    with pytest.raises(PayloadError) as raised:
        call(raw)
    return raised.value


# Decoding


def test_decode_batch_typed_events() -> None:
    batch = mparticle.decode_batch(body({
        "environment": "development", "mpid": 42,
        "user_identities": {"customer_id": "c1"},
        "events": [custom("buy"), {"event_type": "screen_view", "data": {"screen_name": "Home"}},
                   {"event_type": "session_start"}],
    }))
    assert batch.environment == "development"
    assert batch.mpid == 42
    assert [type(e) for e in batch.events] == [CustomEvent, ScreenView, SessionStart]
    assert batch.events[0].event_type == "custom_event"


def test_string_mpid_is_accepted_as_a_number() -> None:
    assert mparticle.decode_batch(body({"mpid": "-8520168371483218944"})).mpid == -8520168371483218944


@pytest.mark.parametrize(("raw", "code", "where"), [
    (b"{", "INVALID_JSON", None),
    (b"", "INVALID_JSON", None),
    (b"[]", "INVALID_SHAPE", "`$`"),
    (body({"events": {}}), "INVALID_SHAPE", "`$.events`"),
    (body({"events": [{"event_type": "nope", "data": {}}]}), "INVALID_SHAPE", "`$.events[0].event_type`"),
    (body({"events": [{"data": {}}]}), "INVALID_SHAPE", "`$.events[0]`"),
    (body({"events": [{"event_type": "custom_event", "data": {}}]}), "INVALID_SHAPE", "`$.events[0].data`"),
    (body({"events": [custom(custom_attributes={"a": {"b": 1}})]}), "INVALID_SHAPE",
     "`$.events[0].data.custom_attributes"),
    (body({"events": [custom(timestamp_unixtime_ms="yesterday")]}), "INVALID_SHAPE",
     "`$.events[0].data.timestamp_unixtime_ms`"),
    (body({"environment": "staging"}), "INVALID_SHAPE", "`$.environment`"),
    (body({"user_attributes": []}), "INVALID_SHAPE", "`$.user_attributes`"),
])
def test_decode_batch_refusals_name_the_path(raw: bytes, code: str, where: str | None) -> None:
    error = refused(mparticle.decode_batch, raw)
    assert error.code == code
    assert error.status == 400
    if where is not None:
        assert where in error.message


def test_custom_event_without_name_mentions_the_field() -> None:
    error = refused(mparticle.decode_batch, body({"events": [{"event_type": "custom_event", "data": {}}]}))
    assert "event_name" in error.message


def test_decode_bulk_paths_are_indexed_per_batch() -> None:
    error = refused(mparticle.decode_bulk, body([{"events": []}, {"events": [{"event_type": "x"}]}]))
    assert error.code == "INVALID_SHAPE"
    assert "`$[1].events[0].event_type`" in error.message


@pytest.mark.parametrize(("raw", "code"), [
    (b"[]", "INVALID_SHAPE"), (b"{}", "INVALID_SHAPE"), (b"[", "INVALID_JSON"), (b"[1]", "INVALID_SHAPE"),
])
def test_decode_bulk_refusals(raw: bytes, code: str) -> None:
    assert refused(mparticle.decode_bulk, raw).code == code


def test_bulk_of_100_batches_is_accepted_101_is_not() -> None:
    assert len(mparticle.decode_bulk(body([{"events": []}] * 100))) == 100
    error = refused(mparticle.decode_bulk, body([{"events": []}] * 101))
    assert isinstance(error, LimitExceeded)
    assert (error.code, error.status) == ("TOO_MANY_BATCHES", 400)
    assert "101" in error.message and "100 batches" in error.message


def test_batch_over_128_kb_is_refused_with_413() -> None:
    big = body({"events": [custom(custom_attributes={f"a{i}": "x" * 4000 for i in range(33)})]})
    assert len(big) > 128 * 1024
    error = refused(mparticle.decode_batch, big)
    assert (error.code, error.status) == ("BATCH_TOO_LARGE", 413)
    assert "128 KB" in error.message and "`$`" in error.message
    error = refused(mparticle.decode_bulk, b"[" + body({}) + b"," + big + b"]")
    assert error.code == "BATCH_TOO_LARGE"
    assert "`$[1]`" in error.message


def test_limits_are_checked_in_bulk_batches() -> None:
    error = refused(mparticle.decode_bulk, body([{}, {"user_attributes": {"a": "x" * 4097}}]))
    assert error.code == "ATTRIBUTE_VALUE_TOO_LONG"
    assert "`$[1].user_attributes.a`" in error.message


# Normalising


def normalized(value: dict[str, Any], seed: str = "0:1", ip: str | None = "9.9.9.9") -> Batch:
    return mparticle.normalize(mparticle.decode_batch(body(value)), received_ms=RECEIVED, ip=ip,
                               channel="server_to_server", seed=seed)


def test_identity_spellings_are_canonical_and_empty_identities_dropped() -> None:
    batch = normalized({"user_identities": {"customerid": "c1", "other2": "o2", "email": "", "twitter": None}})
    assert batch.user_identities == {"customer_id": "c1", "other_id_2": "o2"}


def test_missing_timestamps_are_the_receive_time_and_given_ones_are_kept() -> None:
    batch = normalized({"events": [custom("a"), custom("b", timestamp_unixtime_ms=123)]})
    assert [e.data.timestamp_unixtime_ms for e in batch.events] == [RECEIVED, 123]
    assert batch.timestamp_unixtime_ms == RECEIVED


def test_ip_and_channel_are_set_by_the_server() -> None:
    batch = normalized({"source_info": {"channel": "pixel", "partner": "p"}})
    assert batch.ip == "9.9.9.9"
    assert batch.source_info is not None
    assert (batch.source_info.channel, batch.source_info.partner) == ("server_to_server", "p")
    assert normalized({"ip": "1.1.1.1"}).ip == "1.1.1.1"


def test_generated_message_ids_are_stable_per_seed_and_unique_per_event() -> None:
    value = {"events": [custom("a"), custom("b"), custom("c", source_message_id="given")]}
    first = [e.data.source_message_id for e in normalized(value, seed="0:7").events]
    again = [e.data.source_message_id for e in normalized(value, seed="0:7").events]
    other = [e.data.source_message_id for e in normalized(value, seed="0:8").events]
    assert first == again
    assert first[2] == other[2] == "given"
    assert len({first[0], first[1], other[0], other[1]}) == 4
    assert all(first)


def test_session_id_is_derived_from_the_session_uuid() -> None:
    uuid = "5B1C3C5E-6F0B-4A8C-9F3E-7A1D2B3C4D5E"
    batch = normalized({"events": [custom("a", session_uuid=uuid), custom("b", session_uuid=uuid.lower()),
                                   custom("c", session_uuid=uuid, session_id=7), custom("d")]})
    ids = [e.data.session_id for e in batch.events]
    assert ids[0] == ids[1] == mparticle.session_id_for(uuid)
    assert isinstance(ids[0], int) and -(2**63) <= ids[0] < 2**63
    assert ids[2:] == [7, None]


def test_python_sdk_crash_sent_as_commerce_event_becomes_a_crash_report() -> None:
    batch = normalized({"events": [
        {"event_type": "commerce_event", "data": {"class_name": "ValueError", "severity": "fatal",
                                                  "message": "boom", "stack_trace": "tb"}},
        {"event_type": "commerce_event", "data": {"product_action": {"action": "purchase"}}},
    ]})
    crash, commerce = batch.events
    assert isinstance(crash, CrashReport)
    assert isinstance(crash.data, CrashReportData)
    assert (crash.data.class_name, crash.data.severity, crash.data.message, crash.data.stack_trace) == (
        "ValueError", "fatal", "boom", "tb")
    assert crash.data.timestamp_unixtime_ms == RECEIVED
    assert crash.data.source_message_id
    assert commerce.event_type == "commerce_event"


def test_normalize_twice_is_the_same() -> None:
    value = {"user_identities": {"customerid": "c"}, "events": [custom("a")]}
    once = normalized(value)
    twice = mparticle.normalize(normalized(value), received_ms=RECEIVED, ip="9.9.9.9",
                                channel="server_to_server", seed="0:1")
    assert msgspec.json.encode(once) == msgspec.json.encode(twice)


# Properties: any input either decodes or is refused with a PayloadError, never another exception.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
event_types = st.sampled_from(["custom_event", "screen_view", "commerce_event", "session_start", "crash_report",
                               "user_attribute_change", "opt_out", "nope"])
events = st.fixed_dictionaries({"event_type": event_types, "data": st.dictionaries(
    st.sampled_from(["event_name", "screen_name", "custom_attributes", "timestamp_unixtime_ms", "session_uuid",
                     "source_message_id", "custom_event_type", "product_action", "class_name"]), json_values)})
batches = st.fixed_dictionaries({}, optional={
    "events": st.lists(events, max_size=4) | json_values,
    "mpid": st.integers() | st.text(max_size=25) | json_values,
    "environment": st.sampled_from(["production", "development", "x"]) | json_values,
    "user_identities": st.dictionaries(st.text(max_size=12), st.none() | st.text(max_size=5)) | json_values,
    "user_attributes": st.dictionaries(st.text(max_size=5), json_values) | json_values,
})


def accepts_or_refuses(call: Any, raw: bytes) -> None:
    try:
        call(raw)
    except PayloadError as error:
        assert error.code and error.message
        assert error.status in (400, 413)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, batches, st.lists(batches, max_size=3)))
def test_any_json_decodes_or_is_refused(value: Any) -> None:
    raw = json.dumps(value).encode()
    accepts_or_refuses(mparticle.decode_batch, raw)
    accepts_or_refuses(mparticle.decode_bulk, raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_refused(raw: bytes) -> None:
    accepts_or_refuses(mparticle.decode_batch, raw)
    accepts_or_refuses(mparticle.decode_bulk, raw)


@pytest.mark.parametrize("raw", [
    b"[" * 100_000,
    b'{"user_attributes":{"a":' + b"[" * 100_000 + b"}",
])
def test_deeply_nested_json_is_refused(raw: bytes) -> None:
    accepts_or_refuses(mparticle.decode_batch, raw)
    accepts_or_refuses(mparticle.decode_bulk, raw)


@pytest.mark.parametrize("field", ["mpid", "timestamp"])
def test_integers_out_of_64_bit_range_are_refused(field: str) -> None:
    value: dict[str, Any] = {"mpid": 2**64 - 1} if field == "mpid" else {
        "events": [custom(timestamp_unixtime_ms=2**64)]}
    error = refused(mparticle.decode_batch, body(value))
    assert error.code == "INTEGER_OUT_OF_RANGE"
