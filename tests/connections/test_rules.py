"""Parsing a connection's rules: the documented shapes parse; bad ones are refused with the field named."""

from typing import Any

import msgspec
import pytest

from kaon.connections.rules import NameList, Rules, parse_rules


def test_the_empty_rules_forward_everything_by_default() -> None:
    rules = parse_rules({})
    assert rules == Rules()
    assert rules.filters is None and rules.forwarding == [] and rules.consent is None
    assert rules.sampling_percent == 100.0 and rules.transformations == [] and not rules.logged_in_only


def test_event_type_allow_list() -> None:
    rules = parse_rules({"filters": {"event_types": {"allow": ["custom_event", "screen_view"]}}})
    assert rules.filters is not None and rules.filters.event_types is not None
    assert rules.filters.event_types.allow == ["custom_event", "screen_view"]
    assert rules.filters.event_types.deny is None
    assert rules.filters.event_names is None


def test_event_name_deny_list() -> None:
    rules = parse_rules({"filters": {"event_names": {"deny": ["noise", "debug"]}}})
    assert rules.filters is not None and rules.filters.event_names is not None
    assert rules.filters.event_names.deny == ["noise", "debug"]
    assert rules.filters.event_names.allow is None


def test_attribute_filter() -> None:
    rules = parse_rules({"filters": {"attributes": {"deny": ["ssn"]}}})
    assert rules.filters is not None and rules.filters.attributes == NameList(deny=["ssn"])


def test_consent_rule() -> None:
    rules = parse_rules({"consent": {"gdpr_purposes": ["marketing", "analytics"], "honor_ccpa_opt_out": True}})
    assert rules.consent is not None
    assert rules.consent.gdpr_purposes == ["marketing", "analytics"]
    assert rules.consent.honor_ccpa_opt_out is True
    # CCPA is honoured unless switched off.
    assert parse_rules({"consent": {}}).consent.honor_ccpa_opt_out is True  # type: ignore[union-attr]
    assert parse_rules({"consent": {"honor_ccpa_opt_out": False}}).consent.honor_ccpa_opt_out is False  # type: ignore[union-attr]


@pytest.mark.parametrize("percent", [0, 0.5, 50, 99.99, 100])
def test_sampling_percent_between_0_and_100(percent: float) -> None:
    assert parse_rules({"sampling_percent": percent}).sampling_percent == percent


def test_forwarding_rules_and_transformations() -> None:
    rules = parse_rules({
        "forwarding": [{"source": "user_attribute", "name": "tier", "values": ["gold"]},
                       {"source": "identity", "name": "email", "values": ["x@example.com"], "match": "except"}],
        "logged_in_only": True,
        "transformations": [{"op": "rename", "from": "color", "to": "colour"}, {"op": "drop", "attribute": "n"},
                            {"op": "set", "attribute": "source", "value": "kaon"},
                            {"op": "hash", "attribute": "email"},
                            {"op": "map_event_name", "from": "Clicked", "to": "Click"}],
    })
    assert [(r.source, r.name, r.values, r.match) for r in rules.forwarding] == [
        ("user_attribute", "tier", ["gold"], "only"), ("identity", "email", ["x@example.com"], "except")]
    assert rules.logged_in_only
    assert [(t.op, t.attribute, t.value, t.from_, t.to) for t in rules.transformations] == [
        ("rename", None, None, "color", "colour"), ("drop", "n", None, None, None),
        ("set", "source", "kaon", None, None), ("hash", "email", None, None, None),
        ("map_event_name", None, None, "Clicked", "Click")]


def refusal(raw: dict[str, Any]) -> str:
    with pytest.raises(msgspec.ValidationError) as caught:
        parse_rules(raw)
    return str(caught.value)


@pytest.mark.parametrize("field", ["event_types", "event_names", "attributes"])
def test_both_allow_and_deny_is_refused_at_the_field(field: str) -> None:
    message = refusal({"filters": {field: {"allow": ["a"], "deny": ["b"]}}})
    assert "exactly one of `allow` or `deny`" in message
    assert f"$.filters.{field}" in message


def test_neither_allow_nor_deny_is_refused() -> None:
    assert "$.filters.event_names" in refusal({"filters": {"event_names": {}}})


@pytest.mark.parametrize("percent", [101, 100.5, -1])
def test_sampling_outside_0_to_100_is_refused_with_the_field_named(percent: float) -> None:
    assert "sampling_percent" in refusal({"sampling_percent": percent})


@pytest.mark.parametrize(("raw", "field"), [
    ({"bogus": 1}, "bogus"),
    ({"filters": {"event_type": {"allow": ["x"]}}}, "event_type"),
    ({"event_names": {"deny": ["x"]}}, "event_names"),  # filters belong under `filters`
    ({"consent": {"gdpr": ["marketing"]}}, "gdpr"),
    ({"forwarding": [{"source": "identity", "name": "email", "values": [], "when": "x"}]}, "when"),
])
def test_unknown_keys_are_refused_by_name(raw: dict[str, Any], field: str) -> None:
    message = refusal(raw)
    assert "unknown field" in message and f"`{field}`" in message


@pytest.mark.parametrize(("step", "missing"), [
    ({"op": "rename", "from": "a"}, "to"),
    ({"op": "rename", "to": "b"}, "from"),
    ({"op": "drop"}, "attribute"),
    ({"op": "set", "value": 1}, "attribute"),
    ({"op": "hash"}, "attribute"),
    ({"op": "map_event_name", "from": "a"}, "to"),
])
def test_a_transformation_missing_its_fields_is_refused_naming_them(step: dict[str, Any], missing: str) -> None:
    message = refusal({"transformations": [{"op": "set", "attribute": "ok", "value": 1}, step]})
    assert f"`{step['op']}` needs {missing}" in message
    assert "$.transformations[1]" in message


def test_unknown_transformation_and_forwarding_source_are_refused() -> None:
    assert "$.transformations[0].op" in refusal({"transformations": [{"op": "uppercase", "attribute": "a"}]})
    assert "$.forwarding[0].source" in refusal({"forwarding": [{"source": "cookie", "name": "a", "values": []}]})
    assert "$.forwarding[0].match" in refusal(
        {"forwarding": [{"source": "identity", "name": "a", "values": [], "match": "never"}]})
