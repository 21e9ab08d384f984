"""Audience definitions: what a definition parses to, and every refusal with the pointer of its bad node."""

from typing import Any

import pytest

from kaon.audiences.definition import (
    DEFAULT_LOOKBACK_DAYS,
    MAX_COUNT,
    MAX_DEPTH,
    MAX_LOOKBACK_DAYS,
    MAX_NODES,
    All,
    AnyOf,
    AudienceLeaf,
    ConsentLeaf,
    EventLeaf,
    Not,
    ProfileLeaf,
    SeenLeaf,
    SequenceLeaf,
    parse_audience,
)
from kaon.audiences.errors import DefinitionError

DAY = 86_400_000
HOUR = 3_600_000
NOV_1 = 1_761_955_200_000  # 2025-11-01T00:00:00Z
PURCHASE = {"event_type": "commerce_event", "name": "purchase"}
CART = {"event_type": "commerce_event", "name": "add_to_cart"}


def test_a_tree_of_criteria_parses_to_its_nodes() -> None:
    parsed = parse_audience({"all": [
        {"event": {**PURCHASE, "within": "7d", "frequency": {"at_least": 3}}},
        {"any": [{"sequence": {"first": CART, "then_not": PURCHASE, "gap": "1h", "within": "24h"}},
                 {"not": {"event": {"name": "View", "between": {"from": "2025-11-01", "to": "2025-11-30"},
                                    "frequency": {"exactly": 0}}}}]},
        {"calculated_attribute": {"name": "LTV", "operator": "greater_than", "value": 100}},
        {"audience": {"id": "aud_1", "member": False}},
    ]}, 10)
    assert parsed.lookback_ms == 10 * DAY
    assert parsed.references == frozenset({"aud_1"})
    assert parsed.uses_profile
    assert isinstance(parsed.root, All)
    event, either, calc, audience = parsed.root.children
    assert isinstance(event, EventLeaf)
    assert (event.key, event.within_ms, event.at_least, event.at_most) == ("0", 7 * DAY, 3, None)
    assert (event.match.event_type, event.match.name) == ("commerce_event", "purchase")
    assert isinstance(either, AnyOf)
    sequence, negation = either.children
    assert isinstance(sequence, SequenceLeaf)
    assert (sequence.key, sequence.negated, sequence.gap_ms, sequence.within_ms) == ("1", True, HOUR, 24 * HOUR)
    assert isinstance(negation, Not) and isinstance(negation.child, EventLeaf)
    assert negation.child.between == (NOV_1, NOV_1 + 30 * DAY)
    assert (negation.child.at_least, negation.child.at_most, negation.child.match.name) == (0, 0, "view")
    assert isinstance(calc, ProfileLeaf) and (calc.kind, calc.name) == ("calculated_attribute", "ltv")
    assert audience == AudienceLeaf("aud_1", False)
    assert [leaf.key for leaf in parsed.event_leaves] == ["0", "1", "2"]


def test_defaults() -> None:
    parsed = parse_audience({"event": {"name": "purchase"}})
    assert parsed.lookback_ms == DEFAULT_LOOKBACK_DAYS * DAY
    assert not parsed.uses_profile  # only event criteria: the profile need not be loaded
    leaf = parsed.root
    assert isinstance(leaf, EventLeaf) and (leaf.at_least, leaf.at_most, leaf.within_ms, leaf.between) == (
        1, None, None, None)
    at_most = parse_audience({"event": {"name": "x", "frequency": {"at_most": 2}}}).root
    assert isinstance(at_most, EventLeaf) and (at_most.at_least, at_most.at_most) == (0, 2)
    exactly = parse_audience({"event": {"name": "x", "frequency": {"exactly": 2}}}).root
    assert isinstance(exactly, EventLeaf) and (exactly.at_least, exactly.at_most) == (2, 2)
    followed = parse_audience({"sequence": {"first": CART, "then": PURCHASE, "gap": "90m"}}).root
    assert isinstance(followed, SequenceLeaf) and not followed.negated and followed.gap_ms == 90 * 60_000


def test_profile_criteria() -> None:
    parsed = parse_audience({"all": [
        {"user_attribute": {"name": "Tier", "operator": "equals", "value": "gold"}},
        {"identity": {"identity_type": "email", "operator": "ends_with", "value": "@x.com"}},
        {"device": {"field": "platform", "operator": "equals", "value": "iOS"}},
        {"consent": {"regulation": "gdpr", "purpose": " Marketing ", "consented": False}},
        {"consent": {"regulation": "ccpa"}},
        {"first_seen": {"within": "7d"}},
        {"last_seen": {"operator": "before", "value": "2026-01-01"}},
    ]})
    assert isinstance(parsed.root, All)
    tier, email, device, gdpr, ccpa, first, last = parsed.root.children
    assert isinstance(tier, ProfileLeaf) and (tier.kind, tier.name, tier.condition.text) == (
        "user_attribute", "tier", "gold")
    assert isinstance(email, ProfileLeaf) and (email.kind, email.name) == ("identity", "email")
    assert isinstance(device, ProfileLeaf) and (device.kind, device.name) == ("device", "platform")
    assert gdpr == ConsentLeaf("gdpr", "marketing", False)
    assert ccpa == ConsentLeaf("ccpa", "data_sale_opt_out", True)
    assert first == SeenLeaf("first_seen", 7 * DAY, None)
    assert isinstance(last, SeenLeaf) and last.condition is not None and last.condition.operator == "before"
    assert not parse_audience({"device": {"field": "platform", "operator": "exists"}}).uses_profile


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"event": {"name": "x"}}
    for _ in range(depth - 1):
        node = {"not": node}
    return node


def test_limits_are_inclusive() -> None:
    assert parse_audience(nested(MAX_DEPTH))
    assert parse_audience({"any": [{"event": {"name": "x"}}] * (MAX_NODES - 1)})
    assert parse_audience({"event": {"name": "x", "frequency": {"at_least": MAX_COUNT}}})
    assert parse_audience({"event": {"name": "x"}}, MAX_LOOKBACK_DAYS).lookback_ms == MAX_LOOKBACK_DAYS * DAY
    assert parse_audience({"event": {"name": "x", "conditions": [{"attribute_name": "a", "operator": "exists"}] * 50}})


EVENT = "#/definition/event"
SEQUENCE = "#/definition/sequence"


def sequence(**parts: Any) -> dict[str, Any]:
    body = {"first": CART, "then_not": PURCHASE, "gap": "1h", **parts}
    return {"sequence": {k: v for k, v in body.items() if v is not None}}


@pytest.mark.parametrize(("definition", "pointer"), [
    (None, "#/definition"),
    ([], "#/definition"),
    ({}, "#/definition"),
    ({"event": {"name": "x"}, "not": {"event": {"name": "y"}}}, "#/definition"),
    ({"everything": {}}, "#/definition"),
    ({"all": []}, "#/definition/all"),
    ({"any": {"event": {"name": "x"}}}, "#/definition/any"),
    ({"all": [{"event": {"name": "x"}}, {"evnt": {}}]}, "#/definition/all/1"),
    ({"not": "x"}, "#/definition/not"),
    ({"not": {"not": {"user_attribute": {"operator": "exists"}}}}, "#/definition/not/not/user_attribute/name"),
    ({"event": "purchase"}, EVENT),
    ({"event": {"name": "x", "witin": "7d"}}, f"{EVENT}/witin"),
    ({"event": {"event_type": "purchase"}}, f"{EVENT}/event_type"),
    ({"event": {"name": ""}}, f"{EVENT}/name"),
    ({"event": {"name": 5}}, f"{EVENT}/name"),
    ({"event": {"custom_event_type": ["a"]}}, f"{EVENT}/custom_event_type"),
    ({"event": {"name": "x", "within": "soon"}}, f"{EVENT}/within"),
    ({"event": {"name": "x", "within": "0m"}}, f"{EVENT}/within"),
    ({"event": {"name": "x", "within": True}}, f"{EVENT}/within"),
    ({"event": {"name": "x", "within": 1.5}}, f"{EVENT}/within"),
    ({"event": {"name": "x", "between": "November"}}, f"{EVENT}/between"),
    ({"event": {"name": "x", "between": {"to": "2025-11-30"}}}, f"{EVENT}/between/from"),
    ({"event": {"name": "x", "between": {"from": "2025-11-01", "to": "later"}}}, f"{EVENT}/between/to"),
    ({"event": {"name": "x", "between": {"from": "2025-11-02", "to": "2025-11-01"}}}, f"{EVENT}/between/to"),
    ({"event": {"name": "x", "within": "7d", "between": {"from": "2025-11-01", "to": "2025-11-02"}}}, EVENT),
    ({"event": {"name": "x", "frequency": 3}}, f"{EVENT}/frequency"),
    ({"event": {"name": "x", "frequency": {}}}, f"{EVENT}/frequency"),
    ({"event": {"name": "x", "frequency": {"at_least": 1, "at_most": 3}}}, f"{EVENT}/frequency"),
    ({"event": {"name": "x", "frequency": {"sometimes": 2}}}, f"{EVENT}/frequency/sometimes"),
    ({"event": {"name": "x", "frequency": {"at_least": -1}}}, f"{EVENT}/frequency/at_least"),
    ({"event": {"name": "x", "frequency": {"at_most": MAX_COUNT + 1}}}, f"{EVENT}/frequency/at_most"),
    ({"event": {"name": "x", "frequency": {"exactly": "2"}}}, f"{EVENT}/frequency/exactly"),
    ({"event": {"name": "x", "frequency": {"exactly": True}}}, f"{EVENT}/frequency/exactly"),
    ({"event": {"name": "x", "conditions": {"operator": "exists"}}}, f"{EVENT}/conditions"),
    ({"event": {"name": "x", "conditions": [{"attribute_name": "a", "operator": "nearly"}]}},
     f"{EVENT}/conditions/0/operator"),
    ({"event": {"name": "x", "conditions": [{"attribute_name": "a", "operator": "exists"}] * 51}},
     f"{EVENT}/conditions"),
    ({"event": {"name": "x", "product_conditions": [{"operator": "exists"}]}},
     f"{EVENT}/product_conditions/0/attribute_name"),
    ({"event": {"name": "x", "product_conditions": [{"attribute_name": "price", "operator": "between",
                                                     "min_value": 5, "max_value": 1}]}},
     f"{EVENT}/product_conditions/0/max_value"),
    (sequence(first=None), f"{SEQUENCE}/first"),
    (sequence(first="add_to_cart"), f"{SEQUENCE}/first"),
    (sequence(then_not=None), f"{SEQUENCE}/then_not"),
    (sequence(then_not="purchase"), f"{SEQUENCE}/then_not"),
    (sequence(then_not=None, then="purchase"), f"{SEQUENCE}/then"),
    (sequence(then=PURCHASE), SEQUENCE),
    (sequence(gap=None), f"{SEQUENCE}/gap"),
    (sequence(gap="an hour"), f"{SEQUENCE}/gap"),
    (sequence(gap=0), f"{SEQUENCE}/gap"),
    (sequence(within="a day"), f"{SEQUENCE}/within"),
    (sequence(wthin="1d"), f"{SEQUENCE}/wthin"),
    (sequence(first={"event_type": "nope"}), f"{SEQUENCE}/first/event_type"),
    (sequence(first={"name": "x", "within": "1d"}), f"{SEQUENCE}/first/within"),
    (sequence(then_not={"name": "x", "conditions": [{"attribute_name": "a"}]}),
     f"{SEQUENCE}/then_not/conditions/0/operator"),
    (sequence(then_not=None, then={"event_type": 3}), f"{SEQUENCE}/then/event_type"),
    ({"user_attribute": {"operator": "exists"}}, "#/definition/user_attribute/name"),
    ({"user_attribute": {"name": "x" * 257, "operator": "exists"}}, "#/definition/user_attribute/name"),
    ({"user_attribute": {"name": "tier"}}, "#/definition/user_attribute/operator"),
    ({"user_attribute": {"name": "tier", "operator": "equals"}}, "#/definition/user_attribute/value"),
    ({"user_attribute": {"name": "tier", "operator": "exists", "attribute": "x"}},
     "#/definition/user_attribute/attribute"),
    ({"calculated_attribute": {"name": "", "operator": "exists"}}, "#/definition/calculated_attribute/name"),
    ({"calculated_attribute": {"name": "ltv", "operator": "greater_than", "value": "lots"}},
     "#/definition/calculated_attribute/value"),
    ({"identity": {"type": "email", "operator": "exists"}}, "#/definition/identity/identity_type"),
    ({"identity": {"identity_type": "email", "operator": "exists", "type": "colour"}}, "#/definition/identity/type"),
    ({"device": {"operator": "exists"}}, "#/definition/device/field"),
    ({"device": {"field": "wallpaper", "operator": "exists"}}, "#/definition/device/field"),
    ({"consent": {"purpose": "marketing"}}, "#/definition/consent/regulation"),
    ({"consent": {"regulation": "lgpd"}}, "#/definition/consent/regulation"),
    ({"consent": {"regulation": "gdpr"}}, "#/definition/consent/purpose"),
    ({"consent": {"regulation": "gdpr", "purpose": "  "}}, "#/definition/consent/purpose"),
    ({"consent": {"regulation": "gdpr", "purpose": "ads", "consented": "yes"}}, "#/definition/consent/consented"),
    ({"consent": {"regulation": "ccpa", "opted_out": 1}}, "#/definition/consent/opted_out"),
    ({"consent": {"regulation": "ccpa", "opted": True}}, "#/definition/consent/opted"),
    ({"first_seen": {"within": "recently"}}, "#/definition/first_seen/within"),
    ({"first_seen": {}}, "#/definition/first_seen/operator"),
    ({"last_seen": {"operator": "equals", "value": "2026-01-01"}}, "#/definition/last_seen/operator"),
    ({"last_seen": {"operator": "after", "value": "someday"}}, "#/definition/last_seen/value"),
    ({"audience": {}}, "#/definition/audience/id"),
    ({"audience": {"id": ""}}, "#/definition/audience/id"),
    ({"audience": {"id": "aud_1", "member": "yes"}}, "#/definition/audience/member"),
    ({"audience": {"id": "aud_1", "name": "x"}}, "#/definition/audience/name"),
    (nested(MAX_DEPTH + 1), "#/definition" + "/not" * MAX_DEPTH),
    ({"any": [{"event": {"name": "x"}}] * MAX_NODES}, f"#/definition/any/{MAX_NODES - 1}"),
])
def test_bad_definitions_are_refused_with_the_pointer_of_the_bad_node(definition: object, pointer: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_audience(definition)
    assert refused.value.pointer == pointer
    assert refused.value.code == "INVALID_DEFINITION"


@pytest.mark.parametrize("lookback", [0, MAX_LOOKBACK_DAYS + 1, True, "30", 7.5])
def test_a_bad_lookback_is_refused(lookback: object) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_audience({"event": {"name": "x"}}, lookback)
    assert refused.value.pointer == "#/lookback_days"


def test_the_pointer_starts_where_the_caller_says() -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_audience({"all": [{"event": {"name": "x", "within": "7x"}}]}, pointer="#/body/definition")
    assert refused.value.pointer == "#/body/definition/all/0/event/within"
