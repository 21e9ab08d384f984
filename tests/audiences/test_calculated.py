"""Calculated attributes: definitions (and every refusal's pointer), and values from the incremental state as
docs/calculated-attributes.md describes them."""

import itertools
from typing import Any

import pytest

from kaon.audiences import calculated
from kaon.audiences.calculated import (
    DISTINCT_KEPT,
    DISTINCT_SHOWN,
    MAX_WITHIN_DAYS,
    WINDOW_ENTRIES,
    CalcDefinition,
    State,
    definition_json,
    iso,
    number_text,
    parse_definition,
)
from kaon.audiences.errors import DefinitionError
from kaon.audiences.facts import Fact, fact_of

T = 1_800_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR


def custom(ts: int, name: str = "view", event_type: str | None = None, **attributes: Any) -> Fact:
    data: dict[str, Any] = {"event_name": name, "timestamp_unixtime_ms": ts, "custom_attributes": attributes}
    if event_type is not None:
        data["custom_event_type"] = event_type
    return fact_of({"event_type": "custom_event", "data": data}, 0)


def commerce(ts: int, action: str = "purchase", products: list[dict[str, Any]] | None = None,
             name: str | None = None, currency: str | None = None, attributes: dict[str, Any] | None = None,
             **fields: Any) -> Fact:
    data: dict[str, Any] = {"timestamp_unixtime_ms": ts,
                            "product_action": {"action": action, **fields, "products": products or []}}
    if name is not None:
        data["event_name"] = name
    if currency is not None:
        data["currency_code"] = currency
    if attributes:
        data["custom_attributes"] = attributes
    return fact_of({"event_type": "commerce_event", "data": data}, 0)


def definition(calc: str, attribute: str | None = None, *, event_type: str | None = "custom_event",
               name: str | None = None, period: dict[str, Any] | None = None, **point: Any) -> CalcDefinition:
    data_point: dict[str, Any] = dict(point)
    if event_type is not None:
        data_point["event_type"] = event_type
    if name is not None:
        data_point["event_name"] = name
    if attribute is not None:
        data_point["attribute_name"] = attribute
    conditions = data_point.pop("conditions", [])
    raw = {"data_point": data_point, "calculation_type": calc, "conditions": conditions}
    if period is not None:
        raw["time_period"] = period
    return parse_definition(raw)


def state_of(d: CalcDefinition, facts: list[Fact]) -> State:
    state: State = {}
    for fact in facts:
        calculated.apply(d, state, fact)
    return state


def value(d: CalcDefinition, facts: list[Fact], now: int = T + 100 * DAY) -> object:
    return calculated.current(d, state_of(d, facts), now)


WEEK = {"type": "within", "within": 7, "within_unit": "days"}


# Values.

def test_count_counts_events_or_the_events_with_the_attribute() -> None:
    facts = [custom(T, category="a"), custom(T + 1), custom(T + 2, name="other", category="b")]
    assert value(definition("count", name="VIEW"), facts) == "2"
    assert value(definition("count", "Category", name="view"), facts) == "1"
    assert value(definition("count"), facts) == "3"


def test_no_state_has_no_value_and_an_empty_window_is_null_or_zero() -> None:
    assert calculated.current(definition("count"), None, T) is None
    facts = [custom(T, price=3)]
    assert value(definition("count", period=WEEK), facts, T + 7 * DAY) == "0"
    assert value(definition("sum", "price", period=WEEK), facts, T + 7 * DAY) is None
    assert value(definition("sum", "price", period=WEEK), facts, T + 7 * DAY - 1) == "3"


def test_sum_average_min_max_read_numbers_and_numeric_strings_only() -> None:
    facts = [custom(T, price=10), custom(T + 1, price="2.5"), custom(T + 2, price="n/a"), custom(T + 3, price=True),
             custom(T + 4, price=-0.5), custom(T + 5)]
    assert value(definition("sum", "price"), facts) == "12"
    assert value(definition("average", "price"), facts) == "4"
    assert value(definition("min", "price"), facts) == "-0.5"
    assert value(definition("max", "price"), facts) == "10"
    assert value(definition("average", "price"), [custom(T, price=1), custom(T, price=1), custom(T, price=2)]) == \
        repr(4 / 3)
    assert value(definition("sum", "price"), [custom(T, price="n/a")]) is None
    assert value(definition("max", "price"), [custom(T, price="n/a")]) is None


def test_first_and_last_occurrence_go_by_event_time_then_by_text_at_the_same_millisecond() -> None:
    late_first = [custom(T + 5, c="middle"), custom(T + 9, c="last"), custom(T, c="b"), custom(T, c="a"),
                  custom(T + 9, c="z-last")]
    assert value(definition("first_occurrence", "C"), late_first) == "a"
    assert value(definition("last_occurrence", "c"), late_first) == "z-last"
    assert value(definition("first_occurrence_timestamp"), late_first) == "2027-01-15T08:00:00.000Z"
    assert value(definition("last_occurrence_timestamp", "c"), late_first) == iso(T + 9)
    assert value(definition("first_occurrence", "c"), [custom(T, c=12.0)]) == "12"
    assert value(definition("last_occurrence", "c"), [custom(T, c=False)]) == "false"


def test_most_frequent_ties_go_to_the_alphabetically_first() -> None:
    d = definition("most_frequent", "c")
    assert value(d, [custom(T, c="b"), custom(T + 1, c="a"), custom(T + 2, c="b")]) == "b"
    assert value(d, [custom(T, c="b"), custom(T + 1, c="a")]) == "a"
    assert value(d, [custom(T, c="b"), custom(T + 1, c="B")]) == "B"  # values are kept as sent


def test_unique_values_count_and_unique_list() -> None:
    facts = [custom(T, c="b"), custom(T + 1, c="a"), custom(T + 2, c="b"), custom(T + 3, c=1), custom(T + 4, c=1.0)]
    assert value(definition("unique_values_count", "c"), facts) == "3"
    assert value(definition("unique_list", "c"), facts) == ["1", "a", "b"]
    assert value(definition("unique_list", "c"), [custom(T)]) is None


def test_unique_list_and_most_frequent_consider_the_first_100_distinct_values() -> None:
    # v000..v099 first, then v100 (seen most often): only the first 100 by first occurrence count.
    facts = [custom(T + i, c=f"v{i:03d}") for i in range(DISTINCT_SHOWN)]
    facts += [custom(T + 1_000 + i, c="v100") for i in range(5)] + [custom(T + 2_000, c="v050")]
    listed = value(definition("unique_list", "c"), facts)
    assert isinstance(listed, list) and len(listed) == DISTINCT_SHOWN and "v100" not in listed
    assert value(definition("most_frequent", "c"), facts) == "v050"
    assert value(definition("unique_values_count", "c"), facts) == str(DISTINCT_SHOWN + 1)
    # At the same first time, the alphabetically first win.
    same = [custom(T, c=f"w{i:03d}") for i in reversed(range(DISTINCT_SHOWN + 1))]
    listed = value(definition("unique_list", "c"), same)
    assert isinstance(listed, list) and "w100" not in listed and "w000" in listed


def test_distinct_values_kept_are_capped_and_later_new_values_are_not_kept() -> None:
    d = definition("unique_values_count", "c")
    facts = [custom(T + i, c=f"v{i}") for i in range(DISTINCT_KEPT + 5)]
    assert value(d, facts) == str(DISTINCT_KEPT)


def test_since_counts_events_at_or_after_the_date() -> None:
    start = T - T % DAY
    d = definition("count", period={"type": "since", "date": iso(start)[:10]})
    assert value(d, [custom(start - 1), custom(start), custom(start + DAY)]) == "2"
    timed = definition("count", period={"type": "since", "date": iso(start + HOUR)})
    assert value(timed, [custom(start), custom(start + HOUR)]) == "1"
    assert calculated.next_change(d, state_of(d, [custom(start)]), start) is None


def test_a_rolling_window_counts_an_event_while_now_is_before_its_time_plus_the_window() -> None:
    d = definition("count", period=WEEK)
    state = state_of(d, [custom(T + HOUR), custom(T)])
    assert calculated.current(d, state, T + 7 * DAY - 1) == "2"
    assert calculated.current(d, state, T + 7 * DAY) == "1"
    assert calculated.next_change(d, state, T) == T + 7 * DAY
    assert calculated.next_change(d, state, T + 7 * DAY) == T + 7 * DAY + HOUR
    calculated.prune(d, state, T + 7 * DAY)
    assert state == {"w": [[T + HOUR, None, 1.0]]}
    assert calculated.next_change(d, state, T + 7 * DAY + HOUR) is None
    weeks = definition("count", period={"type": "within", "within": 2, "within_unit": "weeks"})
    assert value(weeks, [custom(T)], T + 14 * DAY - 1) == "1"
    assert value(weeks, [custom(T)], T + 14 * DAY) == "0"


def test_window_values_are_computed_over_the_entries_inside_the_window() -> None:
    facts = [custom(T, c="a", n=1), custom(T + DAY, c="b", n=5), custom(T + 2 * DAY, c="b", n=2)]
    now = T + 7 * DAY + 1  # the first has rolled off
    assert value(definition("first_occurrence", "c", period=WEEK), facts, now) == "b"
    assert value(definition("min", "n", period=WEEK), facts, now) == "2"
    assert value(definition("unique_list", "c", period=WEEK), facts, now) == ["b"]
    assert value(definition("first_occurrence_timestamp", period=WEEK), facts, now) == iso(T + DAY)


def test_a_window_keeps_the_newest_entries() -> None:
    d = definition("count", period={"type": "within", "within": 3650, "within_unit": "days"})
    state = state_of(d, [custom(T + i) for i in range(WINDOW_ENTRIES + 3)])
    assert len(state["w"]) == WINDOW_ENTRIES
    assert min(e[0] for e in state["w"]) == T + 3


def test_commerce_events_offer_their_action_fields_and_currency_and_answer_to_name_and_action() -> None:
    facts = [commerce(T, total_amount=10, currency="EUR"), commerce(T + 1, total_amount=5, currency="USD"),
             commerce(T + 2, "add_to_cart", total_amount=99), commerce(T + 3, name="Order Completed", total_amount=1)]
    eur = {"operator": "equals", "attribute_name": "Currency_Code", "value": "eur"}
    assert value(definition("sum", "TOTAL_AMOUNT", event_type="commerce_event", name="Purchase"), facts) == "16"
    assert value(definition("sum", "total_amount", event_type="commerce_event", name="order completed"), facts) == "1"
    assert value(definition("sum", "total_amount", event_type="commerce_event", conditions=[eur]), facts) == "10"


def test_product_attributes_come_from_each_product_and_can_use_its_quantity() -> None:
    fact = commerce(T, products=[{"id": "a", "price": 10, "quantity": 2, "category": "shoes"},
                                 {"id": "b", "price": 3.5, "category": "hats"},
                                 {"id": "c", "quantity": 3, "custom_attributes": {"Color": "red"}}],
                    attributes={"category": "shoes"})
    product: dict[str, Any] = {"event_type": "commerce_event", "attribute_category": "product_attribute"}
    assert value(definition("sum", "price", **product), [fact]) == "13.5"
    assert value(definition("sum", "price", **product, use_product_quantity=True), [fact]) == "23.5"
    assert value(definition("count", **product), [fact]) == "3"
    assert value(definition("count", **product, use_product_quantity=True), [fact]) == "6"
    assert value(definition("most_frequent", "color", **product), [fact]) == "red"
    # Conditions read the product's attributes over the event's: product c has no category, so the event's counts.
    shoes = [{"operator": "equals", "attribute_name": "category", "value": "SHOES"}]
    assert value(definition("count", **product, conditions=shoes), [fact]) == "2"
    assert value(definition("unique_list", "id", **product, conditions=shoes), [fact]) == ["a", "c"]


def test_list_and_object_values_do_not_contribute() -> None:
    facts = [custom(T, c=["a", "b"]), custom(T + 1, c="x")]
    assert value(definition("unique_list", "c"), facts) == ["x"]
    product: dict[str, Any] = {"event_type": "commerce_event", "attribute_category": "product_attribute"}
    listed = commerce(T, products=[{"id": "a", "custom_attributes": {"tags": ["x", "y"]}},
                                   {"id": "b", "custom_attributes": {"tags": "z"}}])
    assert value(definition("unique_list", "tags", **product), [listed]) == ["z"]


def test_a_custom_event_sent_without_a_type_is_of_type_other() -> None:
    d = definition("count", event_type="custom_event", custom_event_type="other")
    assert value(d, [custom(T), custom(T, event_type="other"), custom(T, event_type="navigation")]) == "2"
    assert value(definition("count", event_type="custom_event", custom_event_type="Navigation"),
                 [custom(T, event_type="navigation")]) == "1"


def test_apply_says_whether_the_event_contributed() -> None:
    d = definition("sum", "price", name="view", period={"type": "since", "date": iso(T)})
    state: State = {}
    assert calculated.apply(d, state, custom(T, price=1))
    assert not calculated.apply(d, state, custom(T - 1, price=1))
    assert not calculated.apply(d, state, custom(T, name="other", price=1))
    assert not calculated.apply(d, state, custom(T))


CALCS = ("count", "sum", "min", "max", "average", "most_frequent", "unique_values_count", "first_occurrence",
         "last_occurrence", "first_occurrence_timestamp", "last_occurrence_timestamp", "unique_list")


@pytest.mark.parametrize(("calc", "period"), list(itertools.product(CALCS, [None, WEEK])))
def test_merged_states_have_the_value_of_both_histories_together(calc: str, period: dict[str, Any] | None) -> None:
    d = definition(calc, "c", period=period)
    mine = [custom(T, c="b"), custom(T + DAY, c=3), custom(T + 3 * DAY, c="a")]
    theirs = [custom(T, c="a"), custom(T + 2 * DAY, c="b"), custom(T + 2 * DAY, c=1.5), custom(T - 9 * DAY, c="z")]
    merged = calculated.merge_states(d, state_of(d, mine), state_of(d, theirs))
    for now in (T + 4 * DAY, T + 8 * DAY, T + 9 * DAY + 1):
        assert calculated.current(d, merged, now) == value(d, mine + theirs, now), now
    assert calculated.merge_states(d, None, state_of(d, mine)) == state_of(d, mine)
    assert calculated.merge_states(d, state_of(d, mine), {}) == state_of(d, mine)


def test_numbers_and_times_read_as_mparticle_writes_them() -> None:
    assert [number_text(x) for x in (12.0, 12.5, -3.0, 0.1 + 0.2)] == ["12", "12.5", "-3", "0.30000000000000004"]
    assert iso(T + 7) == "2027-01-15T08:00:00.007Z"


def test_the_stored_definition_uses_mparticles_keys_and_defaults() -> None:
    raw = {"datapoint": {"event_type": "custom_event"}, "calculation_type": "count"}
    assert definition_json(raw) == {"data_point": {"event_type": "custom_event"}, "calculation_type": "count",
                                    "recipe_type": "event", "conditions": [], "time_period": {"type": "all"}}
    assert parse_definition(raw).match.event_type == "custom_event"


# Refusals.

GOOD: dict[str, Any] = {"data_point": {"event_type": "custom_event", "attribute_name": "price"},
                        "calculation_type": "sum"}


def changed(**parts: Any) -> dict[str, Any]:
    out = {**GOOD, **parts}
    return {k: v for k, v in out.items() if v is not None}


def point(**parts: Any) -> dict[str, Any]:
    merged = {**GOOD["data_point"], **parts}
    return changed(data_point={k: v for k, v in merged.items() if v is not None})


@pytest.mark.parametrize(("raw", "pointer"), [
    ([], "#/draft_definition"),
    (changed(calculation_type=None), "#/draft_definition/calculation_type"),
    (changed(calculation_type="median"), "#/draft_definition/calculation_type"),
    (changed(colour="red"), "#/draft_definition/colour"),
    (changed(data_point=None), "#/draft_definition/data_point"),
    (changed(data_point="purchase"), "#/draft_definition/data_point"),
    (point(colour="red"), "#/draft_definition/data_point/colour"),
    (point(type="user_attribute"), "#/draft_definition/data_point/type"),
    (point(attribute_category="device"), "#/draft_definition/data_point/attribute_category"),
    (point(event_type="purchase_event"), "#/draft_definition/data_point/event_type"),
    (point(event_type=7), "#/draft_definition/data_point/event_type"),
    (point(event_name=""), "#/draft_definition/data_point/event_name"),
    (point(event_name="x" * 257), "#/draft_definition/data_point/event_name"),
    (point(custom_event_type=3), "#/draft_definition/data_point/custom_event_type"),
    (point(event_type=None), "#/draft_definition/data_point"),
    (point(attribute_name=""), "#/draft_definition/data_point/attribute_name"),
    (point(attribute_name=5), "#/draft_definition/data_point/attribute_name"),
    (point(attribute_name="x" * 257), "#/draft_definition/data_point/attribute_name"),
    (point(attribute_name=None), "#/draft_definition/data_point/attribute_name"),
    (changed(conditions={"operator": "exists"}), "#/draft_definition/conditions"),
    (changed(conditions=["price > 3"]), "#/draft_definition/conditions/0"),
    (changed(conditions=[{"operator": "exists"}]), "#/draft_definition/conditions/0/attribute_name"),
    (changed(conditions=[{"attribute_name": "a", "operator": "exists"}, {"attribute_name": "b", "operator": "?"}]),
     "#/draft_definition/conditions/1/operator"),
    (changed(conditions=[{"attribute_name": "a", "operator": "greater_than", "value": "x"}]),
     "#/draft_definition/conditions/0/value"),
    (changed(conditions=[{"attribute_name": "a", "operator": "exists"}] * 51), "#/draft_definition/conditions"),
    (changed(time_period="7d"), "#/draft_definition/time_period"),
    (changed(time_period={"type": "forever"}), "#/draft_definition/time_period/type"),
    (changed(time_period={"type": "since"}), "#/draft_definition/time_period/date"),
    (changed(time_period={"type": "since", "date": "last tuesday"}), "#/draft_definition/time_period/date"),
    (changed(time_period={"type": "within"}), "#/draft_definition/time_period/within"),
    (changed(time_period={"type": "within", "within": 0}), "#/draft_definition/time_period/within"),
    (changed(time_period={"type": "within", "within": "7"}), "#/draft_definition/time_period/within"),
    (changed(time_period={"type": "within", "within": 1.5}), "#/draft_definition/time_period/within"),
    (changed(time_period={"type": "within", "within": True}), "#/draft_definition/time_period/within"),
    (changed(time_period={"type": "within", "within": MAX_WITHIN_DAYS + 1}), "#/draft_definition/time_period/within"),
    (changed(time_period={"type": "within", "within": 522, "within_unit": "weeks"}),
     "#/draft_definition/time_period/within"),
    (changed(time_period={"type": "within", "within": 7, "within_unit": "hours"}),
     "#/draft_definition/time_period/within_unit"),
])
def test_bad_definitions_are_refused_with_the_pointer_of_the_bad_node(raw: object, pointer: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition(raw, "#/draft_definition")
    assert refused.value.pointer == pointer


@pytest.mark.parametrize("calc", ["sum", "min", "max", "average", "most_frequent", "unique_values_count",
                                  "first_occurrence", "last_occurrence", "unique_list"])
def test_calculations_of_a_value_need_an_attribute(calc: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition({"data_point": {"event_type": "custom_event"}, "calculation_type": calc})
    assert refused.value.pointer == "#/data_point/attribute_name"


@pytest.mark.parametrize("calc", ["count", "first_occurrence_timestamp", "last_occurrence_timestamp"])
def test_counts_and_timestamps_need_no_attribute(calc: str) -> None:
    assert parse_definition({"data_point": {"event_name": "x"}, "calculation_type": calc}).attribute is None


def test_limits_are_inclusive() -> None:
    ok = parse_definition(changed(time_period={"type": "within", "within": MAX_WITHIN_DAYS}))
    assert ok.window_ms == MAX_WITHIN_DAYS * DAY
    assert parse_definition(changed(conditions=[{"attribute_name": "a", "operator": "exists"}] * 50)).match.tests
