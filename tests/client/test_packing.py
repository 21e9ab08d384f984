"""Packing into per-user batches and requests within the Events API limits (100 batches, 128/256 KB)."""

import json
from collections.abc import Callable

import msgspec

from client.capture import CaptureServer
from client.conftest import Errors
from kaon.client import EventTooLargeError, Kaon
from kaon.client.events import Queued, User, custom_event, encode, new_message_id
from kaon.client.packing import MAX_BATCH_BYTES, MAX_BATCHES_PER_REQUEST, MAX_REQUEST_BYTES, pack

Build = Callable[..., Kaon]


def an_event(user: User, name: str, padding: int = 0) -> Queued:
    message_id = new_message_id()
    attributes = {f"a{i}": "x" * 4000 for i in range(padding // 4000)}
    return Queued(user, message_id, encode(custom_event(name, attributes, "other", 1, message_id)))


def test_more_than_100_users_are_split_across_requests(a_client: Build, capture: CaptureServer) -> None:
    client = a_client(batch_size=250)
    for i in range(250):
        client.identify(customer_id=f"user-{i}")
        client.log_event("Seen")
    assert client.flush(timeout=10).sent == 250

    assert [len(request.json()) for request in capture.requests] == [100, 100, 50]
    users = [batch["user_identities"]["customer_id"] for batch in capture.batches()]
    assert users == [f"user-{i}" for i in range(250)]


def test_large_events_are_split_within_byte_limits() -> None:
    users = [User(identities=(("customer_id", f"c{u}"),)) for u in range(3)]
    items = [an_event(users[i % 3], f"e{i}", padding=20_000) for i in range(60)]

    packed = pack(items, "production")

    assert not packed.too_large
    assert len(packed.requests) > 1
    seen: dict[str, list[str]] = {}
    for request in packed.requests:
        assert len(request.body) <= MAX_REQUEST_BYTES
        batches = json.loads(request.body)
        assert len(batches) <= MAX_BATCHES_PER_REQUEST
        for batch in batches:
            assert len(msgspec.json.encode(batch)) <= MAX_BATCH_BYTES
            customer = batch["user_identities"]["customer_id"]
            seen.setdefault(customer, []).extend(e["data"]["event_name"] for e in batch["events"])
    assert seen == {f"c{u}": [f"e{i}" for i in range(60) if i % 3 == u] for u in range(3)}


def test_batches_fill_close_to_the_limit() -> None:
    user = User(identities=(("customer_id", "c"),))
    items = [an_event(user, f"e{i}", padding=1000) for i in range(400)]
    packed = pack(items, "production")
    sizes = [len(msgspec.json.encode(b)) for r in packed.requests for b in json.loads(r.body)]
    assert all(MAX_BATCH_BYTES - 2_000 < size <= MAX_BATCH_BYTES for size in sizes[:-1])


def test_deletions_and_attributes_follow_the_batch_they_happen_in() -> None:
    user = User(identities=(("customer_id", "c"),))
    with_tier = user.with_attribute("tier", "gold")
    removed = Queued(with_tier, new_message_id(), an_event(with_tier, "x").payload, removed_attribute="old")
    packed = pack([an_event(user, "a"), an_event(with_tier, "b"), removed], "production")
    [batch] = json.loads(packed.requests[0].body)
    assert batch["user_attributes"] == {"tier": "gold"}
    assert batch["deleted_user_attributes"] == ["old"]


def test_an_event_over_128_kb_is_reported_and_the_rest_sent(
    a_client: Build, capture: CaptureServer, errors: Errors
) -> None:
    client = a_client()
    client.log_event("small")
    client.log_event("huge", {f"a{i}": "x" * 4000 for i in range(40)})
    result = client.flush(timeout=10)

    assert (result.sent, result.failed) == (1, 1)
    assert [e["data"]["event_name"] for e in capture.events()] == ["small"]
    [error] = errors
    assert isinstance(error, EventTooLargeError)
    assert result.errors == (error,)
