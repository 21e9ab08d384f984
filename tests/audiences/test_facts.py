"""The live path's facts (read from model events) are the backfill's (read from the events' JSON)."""

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from kaon.audiences.facts import fact_of, fact_of_event
from kaon.model.mparticle import decode_batch


def texts(size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=("Cs",)), max_size=size)  # JSON cannot carry lone surrogates


names = st.sampled_from(["Plan", "plan", "Category", "price", "premium", "ÄRGER", "coupon"])
values = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6),
                   st.floats(allow_nan=False, allow_infinity=False, width=32), texts(5), st.lists(texts(3), max_size=2))
attributes = st.none() | st.dictionaries(names, values, max_size=4)
stamps = st.none() | st.integers(0, 2**41)


def common(draw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if (ts := draw(stamps)) is not None:
        data["timestamp_unixtime_ms"] = ts
    if (attrs := draw(attributes)) is not None:
        data["custom_attributes"] = attrs
    return data


products = st.fixed_dictionaries({}, optional={
    "id": texts(4), "name": texts(4), "category": st.sampled_from(["shoes", "Shoes", ""]),
    "price": st.floats(0, 1000, allow_nan=False), "quantity": st.integers(0, 5), "position": st.integers(0, 9),
    "custom_attributes": st.dictionaries(names, values, max_size=3)})


@st.composite
def events(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["custom_event", "screen_view", "commerce_event", "session_start", "opt_out"]))
    data = common(draw)
    if kind == "custom_event":
        data["event_name"] = draw(st.sampled_from(["Search", "search", "Vidéo"]))
        if draw(st.booleans()):
            data["custom_event_type"] = draw(st.sampled_from(["navigation", "Transaction", "other"]))
    elif kind == "screen_view":
        data["screen_name"] = draw(st.sampled_from(["product", "Home"]))
    elif kind == "commerce_event":
        if draw(st.booleans()):
            data["product_action"] = {
                "action": draw(st.sampled_from(["purchase", "Add_To_Cart", "refund"])),
                "total_amount": draw(st.none() | st.floats(0, 500, allow_nan=False)),
                "transaction_id": draw(st.none() | texts(4)),
                "products": draw(st.lists(products, max_size=3))}
        elif draw(st.booleans()):
            data["promotion_action"] = {"action": "view", "promotions": [{"id": "p1"}]}
        elif draw(st.booleans()):
            data["product_impressions"] = [{"product_impression_list": "home", "products": [{"id": "x"}]}]
        if draw(st.booleans()):
            data["event_name"] = draw(st.sampled_from(["Order Completed", ""]))
        if draw(st.booleans()):
            data["currency_code"] = "EUR"
        if draw(st.booleans()):
            data["custom_event_type"] = "Transaction"
    elif kind == "opt_out":
        data["is_opted_out"] = draw(st.booleans())
    return {"event_type": kind, "data": data}


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), min_size=1, max_size=5), st.integers(0, 2**41))
def test_fact_of_event_equals_fact_of_its_json(raw: list[dict[str, Any]], default_ts: int) -> None:
    batch = decode_batch(json.dumps({"environment": "production", "events": raw}).encode())
    assert len(batch.events) == len(raw)
    for event in batch.events:
        assert fact_of_event(event, default_ts) == fact_of(msgspec.to_builtins(event), default_ts)


def test_a_purchase_is_known_by_its_action_and_carries_its_products() -> None:
    batch = decode_batch(json.dumps({"environment": "production", "events": [{"event_type": "commerce_event", "data": {
        "timestamp_unixtime_ms": 5, "currency_code": "EUR", "custom_attributes": {"Coupon": "SPRING"},
        "product_action": {"action": "Purchase", "total_amount": 12.5, "products": [
            {"id": "s1", "category": "shoes", "custom_attributes": {"Colour": "red"}}]}}}]}).encode())
    fact = fact_of_event(batch.events[0], 0)
    assert (fact.ts, fact.event_type, fact.name, fact.action) == (5, "commerce_event", "Purchase", "purchase")
    assert fact.attributes == {"coupon": "SPRING", "total_amount": 12.5, "currency_code": "EUR"}
    assert fact.products == [{"colour": "red", "id": "s1", "category": "shoes"}]
