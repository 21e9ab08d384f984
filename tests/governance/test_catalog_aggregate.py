"""A slice's observations in memory: data points, per-attribute counts, types, first/last seen, examples."""

from typing import Any

import msgspec

from kaon.governance.catalog_aggregate import (
    USER_ATTRIBUTES,
    USER_IDENTITIES,
    CatalogAggregate,
    PointAgg,
    point_id,
)
from kaon.governance.catalog_values import NULL, NUMBER, STRING
from kaon.model.batch import Batch

WS, IN = "ws", "in"


def a_batch(*events: dict[str, Any], environment: str = "production", **fields: Any) -> Batch:
    return msgspec.convert({"environment": environment, "events": list(events), **fields}, Batch)


def custom(name: str, kind: str = "other", **attrs: Any) -> dict[str, Any]:
    return {"event_type": "custom_event",
            "data": {"event_name": name, "custom_event_type": kind, "custom_attributes": attrs}}


def observe(*batches: tuple[Batch, int], full: dict[tuple[str, str], frozenset[str]] | None = None,
            ) -> CatalogAggregate:
    aggregate = CatalogAggregate(full or {})
    for batch, ms in batches:
        aggregate.add(WS, IN, ms, batch, range(len(batch.events)))
    return aggregate


def the(aggregate: CatalogAggregate, key: tuple[str, str, str], environment: str = "production") -> PointAgg:
    return aggregate.groups[(WS, IN, environment)][key]


def test_custom_events_by_name_and_type_with_attribute_types_counts_and_times() -> None:
    aggregate = observe(
        (a_batch(custom("Play", "media", song="a", secs=3), custom("Play", "media", song="b", secs="4")), 100),
        (a_batch(custom("Play", "media", song=None), custom("Play", "navigation")), 50),
    )
    play = the(aggregate, ("custom_event", "Play", "media"))
    assert (play.count, play.first_ms, play.last_ms) == (3, 50, 100)
    attrs = play.attrs()
    song, secs = attrs["song"], attrs["secs"]
    assert song == [3, STRING | NULL, 50, 100]
    assert secs[:2] == [2, NUMBER | STRING]
    assert play.examples["song"] == ["a", "b"]
    assert the(aggregate, ("custom_event", "Play", "navigation")).count == 1


def test_screens_commerce_actions_and_other_event_types() -> None:
    aggregate = observe((a_batch(
        {"event_type": "screen_view", "data": {"screen_name": "Home", "custom_attributes": {"tab": "x"}}},
        {"event_type": "commerce_event", "data": {"product_action": {"action": "purchase"}}},
        {"event_type": "commerce_event", "data": {"promotion_action": {"action": "view"}}},
        {"event_type": "commerce_event", "data": {"product_impressions": [{"products": []}]}},
        {"event_type": "session_start", "data": {}},
    ), 1))
    keys = set(aggregate.groups[(WS, IN, "production")])
    assert keys == {("screen_view", "Home", ""), ("commerce_event", "purchase", ""),
                    ("commerce_event", "promotion_view", ""), ("commerce_event", "impression", ""),
                    ("session_start", "", "")}
    assert the(aggregate, ("screen_view", "Home", "")).examples["tab"] == ["x"]


def test_user_attributes_and_identity_types_without_identity_values() -> None:
    batch = a_batch(
        {"event_type": "user_attribute_change", "data": {"user_attribute_name": "tier", "new": 2}},
        user_attributes={"plan": "pro", "$email": "ann@example.com", "nickname": "cust-9"},
        user_identities={"customerid": "cust-9", "email": "ann@example.com", "other": None},
        device_info={"ios_idfv": "idfv-1"},
    )
    aggregate = observe((batch, 1))
    users = the(aggregate, (USER_ATTRIBUTES, "", ""))
    assert users.count == 2  # the batch's attributes and the change event
    assert set(users.attrs()) == {"plan", "$email", "nickname", "tier"}
    assert users.attrs()["tier"][1] == NUMBER
    assert users.examples["$email"] == ["<identity>"]
    assert users.examples["nickname"] == ["<identity>"]
    ids = the(aggregate, (USER_IDENTITIES, "", ""))
    assert set(ids.attrs()) == {"customer_id", "email", "ios_idfv"}
    assert all(attr[1] == STRING for attr in ids.attrs().values())
    assert ids.examples == {}


def test_per_environment_and_only_kept_events() -> None:
    aggregate = CatalogAggregate({})
    aggregate.add(WS, IN, 1, a_batch(custom("A"), custom("B"), environment="development"), [1])
    assert set(aggregate.groups) == {(WS, IN, "development")}
    assert set(aggregate.groups[(WS, IN, "development")]) == {("custom_event", "B", "other")}


def test_examples_stop_at_three_distinct_and_skip_attributes_already_full() -> None:
    events = [custom("E", v=str(i % 5), w=i) for i in range(20)]
    full = {(WS, point_id(("custom_event", "E", "other"))): frozenset({"w"})}
    e = the(observe((a_batch(*events), 1), full=full), ("custom_event", "E", "other"))
    assert e.examples["v"] == ["0", "1", "2"]
    assert "w" not in e.examples
    assert e.attrs()["w"][:2] == [20, NUMBER]


def test_point_ids_are_stable_and_url_safe() -> None:
    key = ("custom_event", "Add to cart / ünïcode?", "transaction")
    assert point_id(key) == point_id(tuple(key))  # type: ignore[arg-type]
    assert point_id(key) != point_id(("custom_event", "Add to cart / ünïcode?", "other"))
    assert point_id(key).removeprefix("dp_").isalnum()
