"""Evaluating an audience for one profile from its incremental state: membership at a clock time and the next
time it can change with no new event (docs/audiences.md)."""

from typing import Any

import pytest

from kaon.audiences import evaluate
from kaon.audiences.definition import AudienceDefinition, parse_audience
from kaon.audiences.evaluate import MAX_TIMES, ProfileView, State
from kaon.audiences.facts import Fact, fact_of

T = 1_800_000_000_000  # 2027-01-15T08:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
CART = {"event_type": "commerce_event", "name": "add_to_cart"}
PURCHASE = {"event_type": "commerce_event", "name": "purchase"}


def custom(ts: int, name: str = "view", **attributes: Any) -> Fact:
    return fact_of({"event_type": "custom_event", "data": {"event_name": name, "timestamp_unixtime_ms": ts,
                                                           "custom_attributes": attributes}}, 0)


def commerce(ts: int, action: str, *products: dict[str, Any], name: str | None = None, **fields: Any) -> Fact:
    data: dict[str, Any] = {"timestamp_unixtime_ms": ts,
                            "product_action": {"action": action, **fields, "products": list(products)}}
    if name is not None:
        data["event_name"] = name
    return fact_of({"event_type": "commerce_event", "data": data}, 0)


class Profile:
    """One profile's state for one audience, fed events in any order."""

    def __init__(self, definition: dict[str, Any], lookback_days: int | None = None,
                 view: ProfileView | None = None) -> None:
        self.definition: AudienceDefinition = parse_audience(definition, lookback_days)
        self.state: State = {}
        self.view = view or ProfileView()

    def add(self, *facts: Fact) -> "Profile":
        for fact in facts:
            evaluate.observe(self.definition, self.state, fact)
        return self

    def member(self, now: int) -> bool:
        return evaluate.is_member(self.definition, self.state, self.view, now)

    def next(self, now: int) -> int | None:
        return evaluate.next_change(self.definition, self.state, self.view, now)


# Event criteria.

def test_within_counts_events_timed_after_now_minus_the_duration() -> None:
    p = Profile({"event": {**PURCHASE, "within": "2h"}}).add(commerce(T, "purchase"))
    assert p.member(T) and p.member(T + 2 * HOUR - 1)
    assert not p.member(T + 2 * HOUR)
    assert p.next(T) == T + 2 * HOUR
    assert p.next(T + 2 * HOUR) == T + 30 * DAY  # the lookback: no criterion changes after that
    assert p.next(T + 30 * DAY) is None


def test_the_lookback_bounds_every_event_criterion() -> None:
    p = Profile({"event": {"name": "view"}}, lookback_days=3).add(custom(T))
    assert p.member(T + 3 * DAY - 1) and not p.member(T + 3 * DAY)
    assert p.next(T) == T + 3 * DAY
    late = Profile({"event": {"name": "view", "within": "7d"}}, lookback_days=3).add(custom(T))
    assert not late.member(T + 3 * DAY)  # the shorter of lookback and within


def test_between_is_utc_calendar_days_both_inclusive() -> None:
    first, last = "2027-01-10", "2027-01-12"
    day_of_first = T - T % DAY - 5 * DAY  # 2027-01-10T00:00:00Z
    p = Profile({"event": {"name": "view", "between": {"from": first, "to": last}}})
    assert not p.add(custom(day_of_first - 1)).member(T)
    assert p.add(custom(day_of_first + 3 * DAY - 1)).member(T)
    assert Profile({"event": {"name": "view", "between": {"from": first, "to": last}}}).add(
        custom(day_of_first)).member(T)
    assert not Profile({"event": {"name": "view", "between": {"from": first, "to": last}}}).add(
        custom(day_of_first + 3 * DAY)).member(T)


@pytest.mark.parametrize(("frequency", "counts"), [
    ({"at_least": 2}, {0: False, 1: False, 2: True, 3: True}),
    ({"at_most": 1}, {0: True, 1: True, 2: False}),
    ({"exactly": 2}, {0: False, 1: False, 2: True, 3: False}),
    ({"exactly": 0}, {0: True, 1: False}),
    ({"at_least": 0}, {0: True, 5: True}),
])
def test_frequency(frequency: dict[str, int], counts: dict[int, bool]) -> None:
    for n, expected in counts.items():
        p = Profile({"event": {"name": "view", "frequency": frequency}}).add(*(custom(T + i) for i in range(n)))
        assert p.member(T + DAY) is expected, n


def test_an_at_most_criterion_changes_when_events_leave_the_window() -> None:
    p = Profile({"event": {"name": "view", "within": "1d", "frequency": {"at_most": 1}}})
    p.add(custom(T), custom(T + HOUR))
    assert not p.member(T + HOUR)
    assert p.next(T + HOUR) == T + DAY
    assert p.member(T + DAY)


def test_names_conditions_and_product_conditions() -> None:
    shoes = {"attribute_name": "category", "operator": "equals", "value": "shoes"}
    dear = {"attribute_name": "price", "operator": "greater_than", "value": 50}
    assert Profile({"event": {"name": "VIEW", "conditions": [shoes]}}).add(custom(T, Category="Shoes")).member(T)
    assert not Profile({"event": {"name": "view", "conditions": [shoes]}}).add(custom(T, category="hats")).member(T)
    assert Profile({"event": {"name": "purchase"}}).add(commerce(T, "purchase", name="Order Completed")).member(T)
    assert Profile({"event": {"name": "order completed"}}).add(commerce(T, "purchase", name="Order Completed")
                                                              ).member(T)
    amount = {"attribute_name": "total_amount", "operator": "greater_than", "value": 10}
    assert Profile({"event": {**PURCHASE, "conditions": [amount]}}).add(
        commerce(T, "purchase", total_amount=12)).member(T)
    # One product must meet all the product conditions.
    split = commerce(T, "purchase", {"category": "shoes", "price": 10}, {"category": "hats", "price": 90})
    both = commerce(T, "purchase", {"category": "shoes", "price": 90})
    criterion = {"event": {**PURCHASE, "product_conditions": [shoes, dear]}}
    assert not Profile(criterion).add(split).member(T)
    assert Profile(criterion).add(both).member(T)
    assert not Profile({"event": {"event_type": "custom_event", "name": "purchase"}}).add(
        commerce(T, "purchase")).member(T)


# Sequences.

ABANDONED = {"sequence": {"first": CART, "then_not": PURCHASE, "gap": "1h"}}


def test_then_not_enters_once_the_gap_has_passed_without_the_second_event() -> None:
    p = Profile(ABANDONED).add(commerce(T, "add_to_cart"))
    assert not p.member(T + HOUR - 1)
    assert p.next(T) == T + HOUR
    assert p.member(T + HOUR)
    assert p.next(T + HOUR) == T + 30 * DAY
    assert not p.member(T + 30 * DAY)


@pytest.mark.parametrize(("offset", "prevents"), [
    (-1, False), (0, True), (30 * MINUTE, True), (HOUR, True), (HOUR + 1, False)])
def test_then_not_looks_for_the_second_event_in_t_to_t_plus_gap(offset: int, prevents: bool) -> None:
    p = Profile(ABANDONED).add(commerce(T, "add_to_cart"), commerce(T + offset, "purchase"))
    assert p.member(T + 2 * HOUR) is not prevents


def test_a_late_second_event_takes_the_profile_out_again() -> None:
    p = Profile(ABANDONED).add(commerce(T, "add_to_cart"))
    assert p.member(T + 2 * HOUR)
    p.add(commerce(T + 10 * MINUTE, "purchase"))  # timed inside the gap, arriving late
    assert not p.member(T + 2 * HOUR)


def test_any_first_event_will_do_and_within_bounds_it() -> None:
    p = Profile({"sequence": {"first": CART, "then_not": PURCHASE, "gap": "1h", "within": "1d"}})
    p.add(commerce(T, "add_to_cart"), commerce(T + 30 * MINUTE, "purchase"), commerce(T + 2 * HOUR, "add_to_cart"))
    assert not p.member(T + 3 * HOUR - 1)
    assert p.member(T + 3 * HOUR)
    assert p.member(T + DAY + 2 * HOUR - 1)
    assert not p.member(T + DAY + 2 * HOUR)


@pytest.mark.parametrize(("offset", "followed"), [
    (-1, False), (0, True), (HOUR, True), (HOUR + 1, False)])
def test_then_needs_the_second_event_in_t_to_t_plus_gap(offset: int, followed: bool) -> None:
    p = Profile({"sequence": {"first": CART, "then": PURCHASE, "gap": "1h"}})
    p.add(commerce(T + offset, "purchase"), commerce(T, "add_to_cart"))
    assert p.member(T + 2 * HOUR) is followed
    if followed:
        assert p.member(max(T, T + offset))  # at once, no deadline to wait for


def test_an_event_that_is_first_and_following_does_not_follow_itself() -> None:
    again = {"sequence": {"first": PURCHASE, "then": PURCHASE, "gap": "1d"}}
    assert not Profile(again).add(commerce(T, "purchase")).member(T + HOUR)
    assert Profile(again).add(commerce(T, "purchase"), commerce(T + HOUR, "purchase")).member(T + HOUR)
    assert Profile(again).add(commerce(T, "purchase"), commerce(T, "purchase")).member(T)  # two at one time
    # An add to cart (first only) and a purchase (both) at one time: the purchase follows the add to cart.
    any_then_purchase = {"sequence": {"first": {"event_type": "commerce_event"}, "then": PURCHASE, "gap": "1h"}}
    assert Profile(any_then_purchase).add(commerce(T, "add_to_cart"), commerce(T, "purchase")).member(T)
    assert not Profile(any_then_purchase).add(commerce(T, "purchase")).member(T)
    # Not followed by another purchase: a lone purchase qualifies once the gap has passed, two do not.
    not_again = {"sequence": {"first": PURCHASE, "then_not": PURCHASE, "gap": "1h"}}
    assert Profile(not_again).add(commerce(T, "purchase")).member(T + HOUR)
    assert not Profile(not_again).add(commerce(T, "purchase"), commerce(T, "purchase")).member(T + HOUR)
    later = Profile(not_again).add(commerce(T, "purchase"), commerce(T + 2 * HOUR, "purchase"))
    assert later.member(T + 2 * HOUR)  # the first purchase was not followed within the hour
    assert later.state == {"0": {"a": [T, T + 2 * HOUR], "b": [T, T + 2 * HOUR], "s": [T, T + 2 * HOUR]}}


# Profile criteria.

def test_user_attributes_with_calculated_ones_winning() -> None:
    tier = {"user_attribute": {"name": "Tier", "operator": "equals", "value": "gold"}}
    assert Profile(tier, view=ProfileView(attributes={"tier": "GOLD"})).member(T)
    assert not Profile(tier, view=ProfileView(attributes={"tier": "GOLD"}, calculated={"tier": "silver"})).member(T)
    assert not Profile(tier, view=ProfileView(attributes={"tier": "GOLD"}, calculated={"tier": None})).member(T)
    calc = {"calculated_attribute": {"name": "ltv", "operator": "greater_than", "value": 100}}
    assert Profile(calc, view=ProfileView(calculated={"ltv": "100.5"})).member(T)
    assert not Profile(calc, view=ProfileView(calculated={"ltv": "100"}, attributes={"ltv": 500})).member(T)
    assert not Profile(calc).member(T)


def test_identities_devices_consent_and_other_audiences() -> None:
    email = {"identity": {"identity_type": "email", "operator": "ends_with", "value": "@shop.com"}}
    assert Profile(email, view=ProfileView(identities={"email": ["a@else.com", "b@shop.com"]})).member(T)
    assert not Profile(email, view=ProfileView(identities={"email": ["a@else.com"]})).member(T)
    exists = {"identity": {"identity_type": "email", "operator": "exists"}}
    assert not Profile(exists, view=ProfileView(identities={"email": []})).member(T)
    ios = {"device": {"field": "platform", "operator": "equals", "value": "ios"}}
    assert Profile(ios, view=ProfileView(device={"platform": "iOS"})).member(T)
    marketing = {"consent": {"regulation": "gdpr", "purpose": "marketing", "consented": True}}
    given = ProfileView(consent={"gdpr": {"marketing": {"consented": True}}})
    refused = ProfileView(consent={"gdpr": {"marketing": {"consented": False}}})
    assert Profile(marketing, view=given).member(T)
    assert not Profile(marketing, view=refused).member(T) and not Profile(marketing).member(T)
    not_given = {"consent": {"regulation": "gdpr", "purpose": "marketing", "consented": False}}
    assert Profile(not_given, view=refused).member(T) and Profile(not_given).member(T)
    opted_out = {"consent": {"regulation": "ccpa", "opted_out": True}}
    assert Profile(opted_out, view=ProfileView(consent={"ccpa": {"data_sale_opt_out": {"consented": True}}})
                   ).member(T)
    assert not Profile(opted_out).member(T)
    other = {"audience": {"id": "aud_1", "member": True}}
    assert Profile(other, view=ProfileView(members={"aud_1"})).member(T)
    assert not Profile(other).member(T)
    assert Profile({"audience": {"id": "aud_1", "member": False}}).member(T)


def test_seen_times_within_a_duration_or_by_date() -> None:
    recent = Profile({"first_seen": {"within": "1d"}}, view=ProfileView(first_seen_ms=T, last_seen_ms=T))
    assert recent.member(T + DAY - 1) and not recent.member(T + DAY)
    assert recent.next(T) == T + DAY
    assert not Profile({"first_seen": {"within": "1d"}}).member(T)  # never seen
    dated = Profile({"last_seen": {"operator": "before", "value": "2027-01-16"}}, view=ProfileView(last_seen_ms=T))
    assert dated.member(T) and dated.next(T) is None
    assert not Profile({"last_seen": {"operator": "after", "value": "2027-01-16"}},
                       view=ProfileView(last_seen_ms=T)).member(T)


def test_all_any_not() -> None:
    view = ProfileView(attributes={"a": "1", "b": "2"})
    yes = {"user_attribute": {"name": "a", "operator": "exists"}}
    no = {"user_attribute": {"name": "c", "operator": "exists"}}
    assert Profile({"all": [yes, {"not": no}]}, view=view).member(T)
    assert not Profile({"all": [yes, no]}, view=view).member(T)
    assert Profile({"any": [no, yes]}, view=view).member(T)
    assert not Profile({"any": [no, {"not": yes}]}, view=view).member(T)


# State.

def test_observe_keeps_matching_event_times_in_order_and_prune_drops_the_old() -> None:
    p = Profile({"all": [{"event": {"name": "view"}}, ABANDONED]}, lookback_days=1)
    assert not evaluate.observe(p.definition, p.state, custom(T, name="other"))
    p.add(custom(T + 2), custom(T), commerce(T + 1, "add_to_cart"), commerce(T + 5, "purchase"))
    assert p.state == {"0": [T, T + 2], "1": {"a": [T + 1], "b": [T + 5]}}
    evaluate.prune(p.definition, p.state, T + DAY + 1)
    assert p.state == {"0": [T + 2], "1": {"b": [T + 5]}}
    evaluate.prune(p.definition, p.state, T + DAY + 5)
    assert p.state == {}


def test_a_criterion_keeps_the_newest_times() -> None:
    p = Profile({"event": {"name": "view"}})
    p.add(*(custom(T + i) for i in range(MAX_TIMES + 2)))
    assert len(p.state["0"]) == MAX_TIMES and p.state["0"][0] == T + 2


def test_merged_states_hold_both_profiles_times() -> None:
    definition = {"all": [{"event": {"name": "view", "frequency": {"at_least": 2}}}, ABANDONED]}
    a = Profile(definition).add(custom(T + 1), commerce(T, "add_to_cart"))
    b = Profile(definition).add(custom(T), commerce(T + 10, "purchase"))
    merged = evaluate.merge_states(a.state, b.state)
    assert merged == {"0": [T, T + 1], "1": {"a": [T], "b": [T + 10]}}
    assert evaluate.merge_states(None, b.state) == b.state and evaluate.merge_states(a.state, {}) == a.state
    assert not evaluate.is_member(a.definition, merged or {}, ProfileView(), T + 2 * HOUR)  # bought after all
    many = evaluate.merge_states({"0": [T + i for i in range(MAX_TIMES)]}, {"0": [T - 1, T + MAX_TIMES]})
    assert many is not None and len(many["0"]) == MAX_TIMES and many["0"][-1] == T + MAX_TIMES
