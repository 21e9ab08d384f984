"""The user key that routes an accepted request to a log partition, and the split of multi-user requests."""

import json

import msgspec

from kaon.collect.user_keys import mparticle_key, segment_key, split
from kaon.log.base import KIND_MPARTICLE_BATCH, KIND_MPARTICLE_BULK, KIND_SEGMENT_PREFIX


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_an_mparticle_batch_is_keyed_by_the_identifier_its_client_keeps() -> None:
    assert mparticle_key(body({"mp_deviceid": "das-1", "mpid": 7, "user_identities": {"customer_id": "c"}})) == "das-1"
    assert mparticle_key(body({"mpid": 7, "user_identities": {"customer_id": "c"}})) == "7"
    assert mparticle_key(body({"user_identities": {"email": "a@x", "customer_id": "c"}})) == "customer_id:c"
    assert mparticle_key(body({"user_identities": {"other": "o", "email": "a@x"}})) == "email:a@x"
    assert mparticle_key(body({"device_info": {"ios_idfv": "v"}})) == "ios_idfv:v"
    assert mparticle_key(body({"events": []})) is None


def test_a_segment_call_is_keyed_by_anonymous_id_then_user_id() -> None:
    assert segment_key(body({"anonymousId": "a", "userId": "u"})) == "a"
    assert segment_key(body({"userId": 42})) == "42"
    assert segment_key(body({"userId": "  "})) is None


def test_a_single_user_request_is_kept_byte_for_byte() -> None:
    raw = body({"user_identities": {"customer_id": "c"}, "events": []})
    assert split(KIND_MPARTICLE_BATCH, raw) == [("customer_id:c", raw)]
    bulk = body([{"mpid": 1}, {"mpid": 1, "events": []}])
    assert split(KIND_MPARTICLE_BULK, bulk) == [("1", bulk)]


def test_a_bulk_request_is_split_per_user_keeping_each_users_order() -> None:
    batches = [{"mpid": 1, "n": 1}, {"mpid": 2, "n": 2}, {"mpid": 1, "n": 3}]
    parts = split(KIND_MPARTICLE_BULK, body(batches))
    assert [(key, json.loads(part)) for key, part in parts] == [
        ("1", [batches[0], batches[2]]), ("2", [batches[1]])]


def test_a_segment_batch_is_split_per_user_with_its_top_level_fields_kept() -> None:
    calls = [{"type": "track", "userId": "u1", "event": "a"}, {"type": "track", "anonymousId": "x", "event": "b"},
             {"type": "track", "userId": "u1", "event": "c"}]
    raw = body({"batch": calls, "writeKey": "wk", "context": {"library": {"name": "analytics-python"}}})
    parts = split(f"{KIND_SEGMENT_PREFIX}batch", raw)
    decoded = [(key, msgspec.json.decode(part)) for key, part in parts]
    shared = {"writeKey": "wk", "context": {"library": {"name": "analytics-python"}}}
    assert decoded == [("u1", {"batch": [calls[0], calls[2]], **shared}), ("x", {"batch": [calls[1]], **shared})]
