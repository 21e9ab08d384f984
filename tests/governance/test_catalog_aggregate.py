"""A slice's observations in memory: data points, per-attribute counts, types, first/last seen, examples."""

from typing import Any

import msgspec

from kaon.governance.catalog_aggregate import (
    SATURATED,
    USER_ATTRIBUTES,
    USER_IDENTITIES,
    CatalogAggregate,
    PointSummary,
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


def observe(*batches: tuple[Batch, int], stored: dict[tuple[str, str], dict[str, list[str]]] | None = None,
            ) -> CatalogAggregate:
    aggregate = CatalogAggregate(stored or {})
    for batch, ms in batches:
        aggregate.add(WS, IN, ms, batch)
    return aggregate


def the(aggregate: CatalogAggregate, key: tuple[str, str, str], environment: str = "production") -> PointSummary:
    return aggregate.summary()[((WS, IN, environment), key)]


def test_custom_events_by_name_and_type_with_attribute_types_counts_and_times() -> None:
    aggregate = observe(
        (a_batch(custom("Play", "media", song="a", secs=3), custom("Play", "media", song="b", secs="4")), 100),
        (a_batch(custom("Play", "media", song=None), custom("Play", "navigation")), 50),
    )
    play = the(aggregate, ("custom_event", "Play", "media"))
    assert (play.count, play.first_ms, play.last_ms) == (3, 50, 100)
    song, secs = play.attrs["song"], play.attrs["secs"]
    assert song == [3, STRING | NULL, 50, 100]
    assert secs == [2, NUMBER | STRING, 100, 100]
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
    keys = {key for (_, key) in aggregate.summary()}
    assert keys == {("screen_view", "Home", ""), ("commerce_event", "purchase", ""),
                    ("commerce_event", "promotion_view", ""), ("commerce_event", "impression", ""),
                    ("session_start", "", "")}
    assert the(aggregate, ("screen_view", "Home", "")).examples["tab"] == ["x"]
    assert the(aggregate, ("session_start", "", "")).attrs == {}


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
    assert set(users.attrs) == {"plan", "$email", "nickname", "tier"}
    assert users.attrs["tier"][1] == NUMBER
    assert users.examples["$email"] == ["<identity>"]
    assert users.examples["nickname"] == ["<identity>"]
    ids = the(aggregate, (USER_IDENTITIES, "", ""))
    assert set(ids.attrs) == {"customer_id", "email", "ios_idfv"}
    assert all(attr[1] == STRING for attr in ids.attrs.values())
    assert ids.examples == {}


def test_per_environment_and_only_kept_events() -> None:
    aggregate = CatalogAggregate()
    aggregate.add(WS, IN, 1, a_batch(custom("A"), custom("B"), environment="development"), [False, True])
    assert set(aggregate.summary()) == {((WS, IN, "development"), ("custom_event", "B", "other"))}


def test_examples_stop_at_three_distinct_and_skip_attributes_already_full() -> None:
    events = [custom("E", v=str(i % 5), w=i) for i in range(20)]
    stored = {(WS, point_id(("custom_event", "E", "other"))): {"w": ["1", "2", "3"]}}
    e = the(observe((a_batch(*events), 1), stored=stored), ("custom_event", "E", "other"))
    assert e.examples["v"] == ["0", "1", "2"]
    assert "w" not in e.examples
    assert e.attrs["w"][:2] == [20, NUMBER]


def test_an_attribute_that_keeps_repeating_shown_values_stops_being_offered_until_a_refresh() -> None:
    aggregate = CatalogAggregate()
    key = ("custom_event", "Toggle", "other")
    for i in range(2 + SATURATED):  # two new values, then repeats (one event per slice: a slice offers 8 at most)
        aggregate.add(WS, IN, i, a_batch(custom("Toggle", on=i % 2 == 0)))
        aggregate.clear()
    aggregate.add(WS, IN, 100, a_batch(custom("Toggle", on=None), custom("Toggle", on="sometimes")))
    toggle = the(aggregate, key)
    assert toggle.examples == {}  # saturated: "sometimes" is not looked at
    assert toggle.attrs["on"][1] == STRING | NULL  # types and counts are still exact
    aggregate.clear()
    aggregate.refresh({(WS, point_id(key)): {"on": ["true", "false"]}})
    aggregate.add(WS, IN, 101, a_batch(custom("Toggle", on="sometimes")))
    assert the(aggregate, key).examples == {"on": ["sometimes"]}


def test_buckets_outlive_a_slice_and_each_slice_reports_only_its_own_events() -> None:
    aggregate = observe((a_batch(custom("A", n=1), custom("A", n=2)), 10))
    assert the(aggregate, ("custom_event", "A", "other")).count == 2
    aggregate.clear()
    assert aggregate.summary() == {}
    aggregate.add(WS, IN, 20, a_batch(custom("A", n="3")))
    again = the(aggregate, ("custom_event", "A", "other"))
    assert (again.count, again.first_ms, again.attrs["n"][1]) == (1, 20, STRING)
    assert len(aggregate.groups[(WS, IN, "production")]) == 1


def test_point_ids_are_stable_and_url_safe() -> None:
    key = ("custom_event", "Add to cart / ünïcode?", "transaction")
    assert point_id(key) == point_id(tuple(key))  # type: ignore[arg-type]
    assert point_id(key) != point_id(("custom_event", "Add to cart / ünïcode?", "other"))
    assert point_id(key).removeprefix("dp_").isalnum()


def test_a_slices_examples_are_reported_for_the_group_they_came_from() -> None:
    aggregate = CatalogAggregate()
    aggregate.add(WS, "in_web", 1, a_batch(custom("Play", song="web-only")))
    aggregate.add(WS, "in_ios", 1, a_batch(custom("Play", song="ios-only")))
    summary = aggregate.summary()
    key = ("custom_event", "Play", "other")
    assert summary[((WS, "in_web", "production"), key)].examples == {"song": ["web-only"]}
    assert summary[((WS, "in_ios", "production"), key)].examples == {"song": ["ios-only"]}
