"""Plan uploads are checked: unsupported keywords and malformed matches are refused with a pointer."""

from typing import Any

import pytest

from kaon.governance.plans_document import MAX_DATA_POINTS, check_plan, check_version

POINT = "#/data_plan_versions/0/version_document/data_points/0"


def plan_with(*points: dict[str, Any], **version: Any) -> dict[str, Any]:
    return {"data_plan_id": "mobile", "data_plan_name": "Mobile",
            "data_plan_versions": [{"version": 1, "version_document": {"data_points": list(points)}, **version}]}


def custom(definition: dict[str, Any] | None = None) -> dict[str, Any]:
    point: dict[str, Any] = {"match": {"type": "custom_event",
                                       "criteria": {"event_name": "Play", "custom_event_type": "other"}}}
    if definition is not None:
        point["validator"] = {"type": "json_schema", "definition": definition}
    return point


def test_a_good_plan_is_accepted_with_default_blocking() -> None:
    plan, errors = check_plan(plan_with(custom({"properties": {"data": {"properties": {}}}})))
    assert errors == []
    assert plan is not None
    assert plan.versions[0].activated_environment == "none"
    assert not plan.versions[0].blocking.unplanned_events


@pytest.mark.parametrize("keyword", ["$ref", "patternProperties", "allOf", "anyOf", "oneOf", "if", "then", "else",
                                     "not", "dependencies"])
def test_unsupported_keyword_has_its_pointer(keyword: str) -> None:
    definition: dict[str, Any] = {"properties": {"data": {"properties": {"custom_attributes": {keyword: {}}}}}}
    _, errors = check_plan(plan_with(custom(definition)))
    [error] = errors
    assert error["error_type"] == "unsupported_keyword"
    assert error["keyword"] == keyword
    assert error["match_key"] == "custom_event:other:Play"
    escaped = keyword.replace("/", "~1")
    assert error["schema_pointer"] == (f"{POINT}/validator/definition/properties/data/properties/custom_attributes/"
                                       f"{escaped}")


@pytest.mark.parametrize(("match", "pointer", "error_type"), [
    ({"type": "page_view", "criteria": {}}, "/match/type", "invalid_match_type"),
    ({"type": "custom_event", "criteria": {"event_name": "Play"}}, "/match/criteria/custom_event_type",
     "missing_criteria"),
    ({"type": "custom_event", "criteria": {"custom_event_type": "other"}}, "/match/criteria/event_name",
     "missing_criteria"),
    ({"type": "custom_event", "criteria": {"event_name": "P", "custom_event_type": "bogus"}},
     "/match/criteria/custom_event_type", "invalid_criteria"),
    ({"type": "screen_view", "criteria": {}}, "/match/criteria/screen_name", "missing_criteria"),
    ({"type": "product_action", "criteria": {}}, "/match/criteria/action", "missing_criteria"),
    ({"type": "promotion_action", "criteria": {"action": 3}}, "/match/criteria/action", "missing_criteria"),
])
def test_malformed_match_has_its_pointer(match: dict[str, Any], pointer: str, error_type: str) -> None:
    _, errors = check_plan(plan_with({"match": match}))
    assert [(e["error_type"], e["schema_pointer"]) for e in errors] == [(error_type, POINT + pointer)]


@pytest.mark.parametrize(("definition", "where"), [
    ({"type": "float"}, "/type"),
    ({"pattern": "("}, "/pattern"),
    ({"format": "colour"}, "/format"),
    ({"minimum": "1"}, "/minimum"),
    ({"maxLength": -1}, "/maxLength"),
    ({"required": "a"}, "/required"),
    ({"enum": []}, "/enum"),
    ({"properties": {"a": {"type": "nope"}}}, "/properties/a/type"),
    ({"additionalProperties": {"allOf": []}}, "/additionalProperties/allOf"),
])
def test_invalid_schema_values_have_pointers(definition: dict[str, Any], where: str) -> None:
    _, errors = check_plan(plan_with(custom(definition)))
    assert [e["schema_pointer"] for e in errors] == [f"{POINT}/validator/definition{where}"]


def test_too_many_data_points() -> None:
    points = [{"match": {"type": "screen_view", "criteria": {"screen_name": f"s{i}"}}}
              for i in range(MAX_DATA_POINTS + 1)]
    _, errors = check_plan(plan_with(*points))
    assert [e["error_type"] for e in errors] == ["too_many_data_points"]
    _, errors = check_plan(plan_with(*points[:MAX_DATA_POINTS]))
    assert errors == []


def test_duplicate_match_environment_and_blocking_are_checked() -> None:
    _, errors = check_plan(plan_with(custom(), custom(), activated_environment="staging",
                                     blocking={"unplanned_events": "yes", "everything": True}))
    assert {(e["error_type"], e["schema_pointer"]) for e in errors} == {
        ("duplicate_match", f"{POINT[:-1]}1/match"),
        ("invalid_environment", "#/data_plan_versions/0/activated_environment"),
        ("invalid_blocking", "#/data_plan_versions/0/blocking/unplanned_events"),
        ("invalid_blocking", "#/data_plan_versions/0/blocking/everything"),
    }


def test_a_version_alone_gets_the_next_number() -> None:
    version, errors = check_version({"version_document": {"data_points": []}, "blocking": {"unplanned_events": True}},
                                    version=4)
    assert errors == []
    assert version is not None
    assert version.version == 4
    assert version.blocking.unplanned_events
