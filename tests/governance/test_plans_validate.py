"""The plan validator (pure): each violation type, mParticle's number/boolean-string rule, every keyword."""

import json
from typing import Any

import pytest

from kaon.governance.plans_schema import Violation, check_schema, compile_schema, validate
from kaon.governance.plans_validate import check_batch, compile_plan, results
from kaon.model import mparticle
from kaon.model.batch import Batch


def errors(schema: dict[str, Any], value: Any) -> list[Violation]:
    assert check_schema(schema, "#") == []
    out: list[Violation] = []
    validate(compile_schema(schema), value, "#", "v", out)
    return out


def keywords(schema: dict[str, Any], value: Any) -> list[str]:
    return [v.keyword for v in errors(schema, value)]


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("string", ["x", ""], [1, True, None, {}]),
    ("number", [1, 1.5, -3, "42", "4.5e3", " 7 "], ["abc", True, None, [], "nan"]),
    ("integer", [1, 2.0, "42", "-3"], [1.5, "4.2", "x", False]),
    ("boolean", [True, False, "true", "FALSE"], [1, "yes", None]),
    ("object", [{}, {"a": 1}], [[], "x"]),
    ("array", [[], [1]], [{}, "x"]),
])
def test_type_with_number_and_boolean_strings(kind: str, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert keywords({"type": kind}, value) == [], value
    for value in bad:
        found = errors({"type": kind}, value)
        assert [(v.kind, v.keyword, v.expected, v.actual) for v in found] == [("invalid_value", "type", kind, value)]


def test_type_list() -> None:
    assert keywords({"type": ["string", "null"]}, None) == []
    assert keywords({"type": ["string", "null"]}, 3) == ["type"]


def test_enum_matches_numbers_and_booleans_given_as_strings() -> None:
    assert keywords({"enum": ["gold", "silver"]}, "gold") == []
    assert keywords({"enum": ["gold", "silver"]}, "bronze") == ["enum"]
    assert keywords({"enum": [1, 2]}, "2") == []
    assert keywords({"enum": [True]}, "true") == []
    assert keywords({"enum": [1]}, True) == ["enum"]  # a boolean is not the number 1


def test_string_keywords() -> None:
    assert keywords({"minLength": 2, "maxLength": 3}, "ab") == []
    assert keywords({"minLength": 2}, "a") == ["minLength"]
    assert keywords({"maxLength": 3}, "abcd") == ["maxLength"]
    assert keywords({"pattern": "^[a-z0-9_]*$"}, "ab_1") == []
    assert keywords({"pattern": "^[a-z0-9_]*$"}, "Ab-1") == ["pattern"]


@pytest.mark.parametrize(("fmt", "good", "bad"), [
    ("email", "a.b@example.com", "not-an-email"),
    ("uri", "https://example.com/x?y=1", "example com"),
    ("date", "2024-02-29", "2023-02-29"),
    ("time", "13:45:00Z", "25:00:00"),
    ("date-time", "2024-05-01T13:45:00.123+02:00", "2024-05-01 nope"),
    ("hostname", "api.example.com", "-bad-.example"),
])
def test_formats(fmt: str, good: str, bad: str) -> None:
    assert keywords({"format": fmt}, good) == []
    assert keywords({"format": fmt}, bad) == ["format"]


def test_minimum_maximum_apply_to_numeric_strings() -> None:
    schema = {"type": "number", "minimum": 1, "maximum": 10}
    assert keywords(schema, 5) == []
    assert keywords(schema, "5") == []
    assert keywords(schema, "11") == ["maximum"]
    assert keywords(schema, 0) == ["minimum"]


def test_required_properties_and_additional_properties() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "string"}},
              "required": ["a"], "additionalProperties": False}
    assert errors(schema, {"a": "1", "b": "x"}) == []
    found = errors(schema, {"b": 2, "c": 1})
    assert {(v.kind, v.key, v.pointer, v.keyword) for v in found} == {
        ("missing_required", "a", "#/a", "required"),
        ("invalid_value", "b", "#/b", "type"),
        ("unplanned", "c", "#/c", "additionalProperties"),
    }
    # additionalProperties as a schema constrains the extra keys instead
    assert keywords({"additionalProperties": {"type": "number"}}, {"x": "nope", "y": 1}) == ["type"]


PLAN: dict[str, Any] = {"data_points": [
    {"match": {"type": "custom_event", "criteria": {"event_name": "Play", "custom_event_type": "media"}},
     "validator": {"type": "json_schema", "definition": {"properties": {"data": {
         "additionalProperties": True,
         "properties": {"custom_attributes": {
             "additionalProperties": False,
             "properties": {"foo": {"type": "number"}, "tier": {"enum": ["gold", "silver"]}},
             "required": ["foo"]}},
         "required": ["custom_attributes"]}}}}},
    {"match": {"type": "screen_view", "criteria": {"screen_name": "Home"}}},
    {"match": {"type": "product_action", "criteria": {"action": "purchase"}}},
    {"match": {"type": "promotion_action", "criteria": {"action": "click"}}},
    {"match": {"type": "product_impression", "criteria": {}}},
    {"match": {"type": "user_attributes", "criteria": {}},
     "validator": {"type": "json_schema", "definition": {
         "type": "object", "additionalProperties": False,
         "properties": {"age": {"type": "integer", "minimum": 0}, "vip": {"type": "boolean"}}}}},
    {"match": {"type": "user_identities", "criteria": {}},
     "validator": {"type": "json_schema", "definition": {
         "type": "object", "additionalProperties": False,
         "properties": {"customerid": {"type": "string", "pattern": "^[a-zA-Z0-9_]*$"},
                        "email": {"type": "string", "format": "email"}}}}},
]}


def a_batch(**fields: Any) -> Batch:
    batch = mparticle.decode_batch(json.dumps({"environment": "production", **fields}).encode())
    return mparticle.normalize(batch, received_ms=1, ip=None, channel="server_to_server", seed="t")


def custom(name: str, attributes: dict[str, Any] | None = None, kind: str = "media") -> dict[str, Any]:
    data: dict[str, Any] = {"event_name": name, "custom_event_type": kind, "source_message_id": f"m-{name}"}
    if attributes is not None:
        data["custom_attributes"] = attributes
    return {"event_type": "custom_event", "data": data}


def validation(batch: Batch) -> list[dict[str, Any]]:
    return results(check_batch(compile_plan(PLAN), batch), batch)


def test_planned_valid_event_has_no_errors_with_number_string() -> None:
    [result] = validation(a_batch(events=[custom("Play", {"foo": "42", "tier": "gold"})]))
    assert result == {"data": {"match": {"type": "custom_event", "criteria": {"event_name": "Play",
                                                                              "custom_event_type": "media"}},
                               "event_type": "custom_event", "validated_source_message_id": "m-Play"},
                      "validation_errors": []}


def test_each_violation_type_with_pointers() -> None:
    [result] = validation(a_batch(events=[custom("Play", {"tier": "bronze", "extra": 1})]))
    by_type = {(e["validation_error_type"], e["key"]): e for e in result["validation_errors"]}
    assert by_type[("missing_required", "foo")]["error_pointer"] == "#/data/custom_attributes/foo"
    assert by_type[("invalid_value", "tier")] == {
        "validation_error_type": "invalid_value", "key": "tier", "error_pointer": "#/data/custom_attributes/tier",
        "expected": ["gold", "silver"], "actual": "bronze", "schema_keyword": "enum"}
    assert by_type[("unplanned", "extra")]["error_pointer"] == "#/data/custom_attributes/extra"
    assert len(by_type) == 3


def test_unplanned_event_and_match_by_custom_event_type() -> None:
    # Same name, other custom_event_type: a different data point, so unplanned.
    [result] = validation(a_batch(events=[custom("Play", {"foo": 1}, kind="other")]))
    assert result["validation_errors"] == [{"validation_error_type": "unplanned", "key": "Play",
                                            "error_pointer": "#"}]


def test_screen_and_commerce_matches() -> None:
    found = validation(a_batch(events=[
        {"event_type": "screen_view", "data": {"screen_name": "Home"}},
        {"event_type": "screen_view", "data": {"screen_name": "Cart"}},
        {"event_type": "commerce_event", "data": {"product_action": {"action": "purchase"}}},
        {"event_type": "commerce_event", "data": {"product_action": {"action": "refund"}}},
        {"event_type": "commerce_event", "data": {"promotion_action": {"action": "click"}}},
        {"event_type": "commerce_event", "data": {"product_impressions": [{"products": [{"id": "1"}]}]}},
        {"event_type": "session_start", "data": {}},  # not plannable: no result
    ]))
    assert [(r["data"]["match"]["type"], bool(r["validation_errors"])) for r in found] == [
        ("screen_view", False), ("screen_view", True), ("product_action", False), ("product_action", True),
        ("promotion_action", False), ("product_impression", False)]


def test_user_attributes_and_identities_with_idsync_names() -> None:
    batch = a_batch(user_attributes={"age": "30", "vip": "true", "color": "red"},
                    user_identities={"customerid": "bad id!", "email": "a@example.com", "other": "x"})
    attributes, identities = validation(batch)
    assert attributes["data"]["match"] == {"type": "user_attributes", "criteria": {}}
    assert [(e["validation_error_type"], e["key"], e["error_pointer"]) for e in attributes["validation_errors"]] \
        == [("unplanned", "color", "#/color")]
    assert {(e["validation_error_type"], e["key"]) for e in identities["validation_errors"]} == {
        ("invalid_value", "customerid"), ("unplanned", "other")}


def test_a_plan_without_user_attributes_makes_every_attribute_unplanned() -> None:
    plan = compile_plan({"data_points": [PLAN["data_points"][1]]})
    batch = a_batch(user_attributes={"a": 1})
    [finding] = check_batch(plan, batch)
    assert finding.unplanned_names() == ["a"]
