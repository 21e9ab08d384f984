"""Evaluating a connection's rules on one event: each rule drops with its reason, in the fixed order."""

import hashlib
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaon.connections.evaluate import Decision, ProfileFacts, evaluate, sampled_in
from kaon.connections.rules import parse_rules
from kaon.destinations.event import DeliveryEvent
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, event_name
from support.events import custom, purchase, screen

NO_FACTS = ProfileFacts(consent={})
GRANTED = {"gdpr": {"marketing": {"consented": True}, "analytics": {"consented": True}}}


def decide(rules: dict[str, Any], item: DeliveryEvent | None = None, facts: ProfileFacts = NO_FACTS) -> Decision:
    return evaluate(parse_rules(rules), item or custom(), facts)


def kept(decision: Decision) -> DeliveryEvent:
    assert decision.forward, decision.reason
    assert decision.reason == "" and decision.event is not None
    return decision.event


def attrs(decision: Decision) -> dict[str, Any]:
    return dict(kept(decision).event.data.custom_attributes or {})


def test_no_rules_forwards_the_event_unchanged() -> None:
    item = custom(attributes={"color": "blue"})
    assert kept(decide({}, item)) == item


def test_an_opted_out_profile_is_dropped_before_anything_else() -> None:
    decision = decide({"filters": {"event_names": {"deny": ["Clicked Button"]}}},
                      facts=ProfileFacts(consent={}, opted_out=True))
    assert (decision.forward, decision.reason) == (False, "opted_out")


@pytest.mark.parametrize(("names", "item", "forward"), [
    ({"allow": ["custom_event"]}, custom(), True),
    ({"allow": ["custom_event"]}, screen(), False),
    ({"deny": ["screen_view"]}, screen(), False),
    ({"deny": ["screen_view"]}, purchase(), True),
])
def test_event_type_filter(names: dict[str, list[str]], item: DeliveryEvent, forward: bool) -> None:
    decision = decide({"filters": {"event_types": names}}, item)
    assert (decision.forward, decision.reason) == (forward, "" if forward else "filter:event_type")


@pytest.mark.parametrize(("names", "item", "forward"), [
    ({"deny": ["noise"]}, custom(name="noise"), False),
    ({"deny": ["noise"]}, custom(name="Noise"), True),  # exact, case-sensitive
    ({"allow": ["Home"]}, screen(name="Home"), True),  # a screen view's name is its screen name
    ({"allow": ["Home"]}, screen(name="Cart"), False),
    ({"allow": ["purchase"]}, purchase(), True),  # a commerce event's name is its action
])
def test_event_name_filter(names: dict[str, list[str]], item: DeliveryEvent, forward: bool) -> None:
    decision = decide({"filters": {"event_names": names}}, item)
    assert (decision.forward, decision.reason) == (forward, "" if forward else "filter:event_name")


@pytest.mark.parametrize(("rule", "forward"), [
    ({"source": "user_attribute", "name": "tier", "values": ["gold"]}, True),
    ({"source": "user_attribute", "name": "tier", "values": ["silver"]}, False),
    ({"source": "user_attribute", "name": "tier", "values": ["Gold"]}, False),  # case-sensitive
    ({"source": "user_attribute", "name": "tier", "values": ["gold"], "match": "except"}, False),
    ({"source": "user_attribute", "name": "tier", "values": ["silver"], "match": "except"}, True),
    ({"source": "event_attribute", "name": "color", "values": ["blue"]}, True),
    ({"source": "event_attribute", "name": "n", "values": ["3"]}, True),  # values compare as strings
    ({"source": "event_attribute", "name": "color", "values": ["red"]}, False),
    ({"source": "identity", "name": "email", "values": ["jane@example.com"]}, True),
    ({"source": "identity", "name": "email", "values": ["jane@example.com"], "match": "except"}, False),
])
def test_forwarding_rules(rule: dict[str, Any], forward: bool) -> None:
    decision = decide({"forwarding": [rule]}, custom(attributes={"color": "blue", "n": 3}))
    assert decision.forward is forward
    assert decision.reason == ("" if forward else f"forwarding:{rule['source']}:{rule['name']}")


@pytest.mark.parametrize("source", ["event_attribute", "user_attribute", "identity"])
def test_a_missing_attribute_is_present_but_not_matching(source: str) -> None:
    only = decide({"forwarding": [{"source": source, "name": "absent", "values": ["x"]}]})
    assert (only.forward, only.reason) == (False, f"forwarding:{source}:absent")
    unless = decide({"forwarding": [{"source": source, "name": "absent", "values": ["x"], "match": "except"}]})
    assert unless.forward and unless.reason == ""


def test_every_forwarding_rule_must_hold() -> None:
    rules = {"forwarding": [{"source": "user_attribute", "name": "tier", "values": ["gold"]},
                            {"source": "identity", "name": "customer_id", "values": ["someone-else"]}]}
    assert decide(rules).reason == "forwarding:identity:customer_id"


def test_logged_in_only_needs_a_customer_id() -> None:
    assert decide({"logged_in_only": True}).forward
    anonymous = msgspec.structs.replace(custom(), user_identities={"email": "jane@example.com"})
    decision = decide({"logged_in_only": True}, anonymous)
    assert (decision.forward, decision.reason) == (False, "forwarding:logged_in_only")


def test_gdpr_purposes_must_all_be_consented() -> None:
    rules = {"consent": {"gdpr_purposes": ["marketing", "analytics"]}}
    assert decide(rules, facts=ProfileFacts(consent=GRANTED)).forward
    refused = {"gdpr": {"marketing": {"consented": True}, "analytics": {"consented": False}}}
    assert decide(rules, facts=ProfileFacts(consent=refused)).reason == "consent:gdpr:analytics"
    missing = {"gdpr": {"analytics": {"consented": True}}}
    assert decide(rules, facts=ProfileFacts(consent=missing)).reason == "consent:gdpr:marketing"
    assert decide(rules, facts=NO_FACTS).reason == "consent:gdpr:marketing"
    # Purposes are matched like the stored (lower-cased) ones.
    assert decide({"consent": {"gdpr_purposes": [" Marketing "]}}, facts=ProfileFacts(consent=GRANTED)).forward


def test_ccpa_consented_true_means_opted_out_of_sale() -> None:
    opted_out = ProfileFacts(consent={"ccpa": {"data_sale_opt_out": {"consented": True}}})
    not_opted_out = ProfileFacts(consent={"ccpa": {"data_sale_opt_out": {"consented": False}}})
    decision = decide({"consent": {"honor_ccpa_opt_out": True}}, facts=opted_out)
    assert (decision.forward, decision.reason) == (False, "consent:ccpa_opt_out")
    assert decide({"consent": {"honor_ccpa_opt_out": True}}, facts=not_opted_out).forward
    assert decide({"consent": {"honor_ccpa_opt_out": True}}, facts=NO_FACTS).forward
    assert decide({"consent": {"honor_ccpa_opt_out": False}}, facts=opted_out).forward
    assert decide({}, facts=opted_out).forward  # no consent rule, no consent check


def test_order_filters_then_forwarding_then_consent_then_sampling() -> None:
    everything = {
        "filters": {"event_names": {"deny": ["Clicked Button"]}},
        "forwarding": [{"source": "user_attribute", "name": "tier", "values": ["none"]}],
        "consent": {"gdpr_purposes": ["marketing"]},
        "sampling_percent": 0,
    }
    assert decide(everything).reason == "filter:event_name"
    del everything["filters"]
    assert decide(everything).reason == "forwarding:user_attribute:tier"
    del everything["forwarding"]
    assert decide(everything).reason == "consent:gdpr:marketing"
    del everything["consent"]
    assert decide(everything).reason == "sampling"
    del everything["sampling_percent"]
    assert decide(everything).forward


def test_event_type_is_checked_before_event_name() -> None:
    rules = {"filters": {"event_types": {"deny": ["custom_event"]}, "event_names": {"deny": ["Clicked Button"]}}}
    assert decide(rules).reason == "filter:event_type"


def with_mpid(mpid: int) -> DeliveryEvent:
    return msgspec.structs.replace(custom(), mpid=mpid)


def test_sampling_is_stable_per_user_and_close_to_the_percentage() -> None:
    rules = parse_rules({"sampling_percent": 30})
    mpids = range(1, 10_001)
    first = {m for m in mpids if evaluate(rules, with_mpid(m), NO_FACTS).forward}
    again = {m for m in mpids if evaluate(rules, with_mpid(m), NO_FACTS).forward}
    assert first == again  # the same users, every time
    assert 2_800 <= len(first) <= 3_200  # 30% of 10,000 (±2 points; the standard deviation is ~46 users)
    dropped = evaluate(rules, with_mpid(next(m for m in mpids if m not in first)), NO_FACTS)
    assert (dropped.forward, dropped.reason) == (False, "sampling")


def test_sampling_at_the_bounds() -> None:
    assert all(sampled_in(m, 100) for m in range(1000))
    assert not any(sampled_in(m, 0) for m in range(1000))


MPIDS = range(-500, 1500)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_sampling_is_monotone_in_the_percentage(a: float, b: float) -> None:
    low, high = sorted((a, b))
    kept_low = {m for m in MPIDS if sampled_in(m, low)}
    kept_high = {m for m in MPIDS if sampled_in(m, high)}
    assert kept_low <= kept_high  # raising the percentage only adds users


def test_attribute_filters_keep_or_remove_event_attributes() -> None:
    item = custom(attributes={"color": "blue", "ssn": "123", "n": 3})
    assert attrs(decide({"filters": {"attributes": {"deny": ["ssn"]}}}, item)) == {"color": "blue", "n": 3}
    assert attrs(decide({"filters": {"attributes": {"allow": ["color"]}}}, item)) == {"color": "blue"}


def test_transformations_in_order() -> None:
    item = custom(attributes={"color": "blue", "n": 3, "email": "  Jane@Example.COM ", "tmp": "x"})
    out = attrs(decide({"transformations": [
        {"op": "rename", "from": "color", "to": "colour"},
        {"op": "drop", "attribute": "tmp"},
        {"op": "set", "attribute": "source", "value": "kaon"},
        {"op": "set", "attribute": "n", "value": 4},
        {"op": "hash", "attribute": "email"},
        {"op": "rename", "from": "absent", "to": "ghost"},
        {"op": "drop", "attribute": "absent"},
        {"op": "hash", "attribute": "absent"},
    ]}, item))
    assert out == {"colour": "blue", "n": 4, "source": "kaon",
                   "email": hashlib.sha256(b"jane@example.com").hexdigest()}


def test_hash_is_sha256_of_the_trimmed_lowercased_value() -> None:
    out = attrs(decide({"transformations": [{"op": "hash", "attribute": "email"}]},
                       custom(attributes={"email": "\tJane@Example.com\n"})))
    assert out["email"] == hashlib.sha256(b"jane@example.com").hexdigest()


def test_map_event_name() -> None:
    rules = {"transformations": [{"op": "map_event_name", "from": "Clicked Button", "to": "Button Click"}]}
    renamed = kept(decide(rules, custom(name="Clicked Button")))
    assert isinstance(renamed.event.data, CustomEventData) and renamed.event.data.event_name == "Button Click"
    other = kept(decide(rules, custom(name="Other")))
    assert event_name(other.event) == "Other"
    order = kept(decide({"transformations": [{"op": "map_event_name", "from": "purchase", "to": "Order Completed"}]},
                        purchase()))
    assert isinstance(order.event.data, CommerceEventData) and event_name(order.event) == "Order Completed"


def test_map_event_name_renames_a_screen_view() -> None:
    rules = {"transformations": [{"op": "map_event_name", "from": "Home", "to": "Start"}]}
    out = kept(decide(rules, screen(name="Home")))
    assert isinstance(out.event.data, ScreenViewData) and out.event.data.screen_name == "Start"


def test_filters_see_the_name_before_transformations() -> None:
    rules = {"filters": {"event_names": {"allow": ["Clicked Button"]}},
             "transformations": [{"op": "map_event_name", "from": "Clicked Button", "to": "Click"}]}
    assert event_name(kept(decide(rules)).event) == "Click"


TRANSFORMS = [{"op": "rename", "from": "color", "to": "colour"}, {"op": "hash", "attribute": "email"},
              {"op": "set", "attribute": "x", "value": 1}, {"op": "drop", "attribute": "ssn"},
              {"op": "map_event_name", "from": "Clicked Button", "to": "Click"}]


@pytest.mark.parametrize("rules", [
    {"transformations": TRANSFORMS},
    {"filters": {"attributes": {"deny": ["ssn"]}}, "transformations": TRANSFORMS},
])
def test_evaluation_does_not_mutate_the_input_event(rules: dict[str, Any]) -> None:
    item = custom(attributes={"color": "blue", "ssn": "1", "email": "A@B.C"})
    before = msgspec.json.encode(item)
    out = kept(decide(rules, item))
    assert out.attributes() == {"colour": "blue", "email": hashlib.sha256(b"a@b.c").hexdigest(), "x": 1}
    assert msgspec.json.encode(item) == before
    assert item.event.data.custom_attributes == {"color": "blue", "ssn": "1", "email": "A@B.C"}
    assert event_name(item.event) == "Clicked Button"
