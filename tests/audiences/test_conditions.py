"""Value conditions: every operator as docs/audiences.md#conditions describes it, and every refusal's pointer."""

from typing import Any

import pytest

from kaon.audiences.conditions import (
    MAX_TEXT,
    MAX_VALUES,
    as_bool,
    as_time_ms,
    compile_condition,
    day_start,
    glob_match,
)
from kaon.audiences.errors import DefinitionError
from kaon.model.values import as_number

DAY = 86_400_000
JAN_1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def holds(condition: dict[str, Any], value: object) -> bool:
    return compile_condition(condition, "#/c").matches(value)


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("abc", "abc", True), ("abc", "abcd", False), ("a*", "a", True), ("a*", "abc", True), ("*c", "abc", True),
    ("a?c", "abc", True), ("a?c", "ac", False), ("*", "", True), ("", "", True), ("", "a", False),
    ("a*b*c", "axxbyyc", True), ("a*b*c", "axxbyy", False), ("*ab", "aab", True), ("a**", "a", True),
    ("?", "", False), ("*a*", "bab", True), ("*a*", "bbb", False),
])
def test_glob_matches_the_whole_text(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3.0), (2.5, 2.5), ("12", 12.0), (" 7.5 ", 7.5), ("-1e2", -100.0), (True, None), (None, None),
    ("x", None), ("nan", None), ("inf", None), ("1_000", None), ([1], None), ({}, None),
])
def test_numbers_and_numeric_strings(value: object, expected: float | None) -> None:
    assert as_number(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("TRUE", True), (" false ", False), (1, True), (0, False), (2, None),
    ("yes", None), (None, None),
])
def test_booleans(value: object, expected: bool | None) -> None:
    assert as_bool(value) is expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-01-01", JAN_1), ("2026-01-01T10:00:00Z", JAN_1 + 10 * 3_600_000),
    ("2026-01-01T10:00:00", JAN_1 + 10 * 3_600_000), ("2026-01-01T10:00:00+02:00", JAN_1 + 8 * 3_600_000),
    (str(JAN_1), JAN_1), (JAN_1, JAN_1), (float(JAN_1), JAN_1), ("not a date", None), (True, None), (None, None),
])
def test_times_are_iso_8601_utc_or_unix_ms(value: object, expected: int | None) -> None:
    assert as_time_ms(value) == expected


def test_a_day_starts_at_midnight_utc() -> None:
    assert day_start(JAN_1 + DAY - 1) == JAN_1 == day_start(JAN_1)


@pytest.mark.parametrize(("condition", "value", "expected"), [
    ({"operator": "equals", "value": "Shoes"}, "SHOES", True),
    ({"operator": "equals", "value": "shoes"}, "shoe", False),
    ({"operator": "equals", "value": 12}, 12.0, True),
    ({"operator": "equals", "value": 12.5}, "12.5", True),
    ({"operator": "equals", "value": True}, True, True),
    ({"operator": "equals", "value": "b"}, ["a", "B"], True),
    ({"operator": "equals", "value": "x"}, None, False),
    ({"operator": "not_equals", "value": "b"}, ["a", "B"], False),
    ({"operator": "not_equals", "value": "c"}, ["a", "B"], True),
    ({"operator": "not_equals", "value": "c"}, None, True),
    ({"operator": "contains", "value": "OE"}, "shoes", True),
    ({"operator": "contains", "value": "x"}, ["shoes", "box"], True),
    ({"operator": "not_contains", "value": "x"}, ["shoes", "box"], False),
    ({"operator": "not_contains", "value": "x"}, ["shoes"], True),
    ({"operator": "starts_with", "value": "SH"}, "shoes", True),
    ({"operator": "starts_with", "value": "oes"}, "shoes", False),
    ({"operator": "ends_with", "value": "@Example.com"}, "a@example.COM", True),
    ({"operator": "ends_with", "value": "@example.com"}, "a@example.org", False),
    ({"operator": "pattern", "value": "s*s"}, "Shoes", True),
    ({"operator": "pattern", "value": "s?oes"}, "shoes", True),
    ({"operator": "pattern", "value": "s?es"}, "shoes", False),
    ({"operator": "pattern", "value": "hoe"}, "shoes", False),  # the whole value, not a part
    ({"operator": "in_list", "values": ["Hats", "bags"]}, "hats", True),
    ({"operator": "in_list", "values": ["hats", 3]}, 3, True),
    ({"operator": "in_list", "values": ["hats"]}, "shoes", False),
    ({"operator": "not_in_list", "values": ["hats"]}, "shoes", True),
    ({"operator": "not_in_list", "values": ["hats"]}, ["shoes", "HATS"], False),
    ({"operator": "greater_than", "value": 10}, 10.5, True),
    ({"operator": "greater_than", "value": 10}, 10, False),
    ({"operator": "greater_than", "value": "10"}, "11", True),
    ({"operator": "greater_than", "value": 10}, "eleven", False),
    ({"operator": "greater_than", "value": 0}, True, False),  # a boolean is not a number
    ({"operator": "greater_or_equal", "value": 10}, 10, True),
    ({"operator": "less_than", "value": 10}, 9.99, True),
    ({"operator": "less_than", "value": 10}, 10, False),
    ({"operator": "less_than_or_equal", "value": 10}, "10", True),
    ({"operator": "less_than_or_equal", "value": 10}, None, False),
    ({"operator": "between", "min_value": 1, "max_value": 2}, 1, True),
    ({"operator": "between", "min_value": 1, "max_value": 2}, 2, True),
    ({"operator": "between", "min_value": 1, "max_value": 2}, 2.01, False),
    ({"operator": "is_true"}, True, True),
    ({"operator": "is_true"}, "true", True),
    ({"operator": "is_true"}, False, False),
    ({"operator": "is_true"}, None, False),
    ({"operator": "is_false"}, "False", True),
    ({"operator": "is_false"}, None, False),
    ({"type": "boolean", "operator": "equals", "value": "true"}, True, True),
    ({"type": "boolean", "operator": "equals", "value": False}, True, False),
    ({"type": "boolean", "operator": "not_equals", "value": True}, False, True),
    ({"operator": "before", "value": "2026-01-02"}, "2026-01-01T23:59:59Z", True),
    ({"operator": "before", "value": "2026-01-02"}, "2026-01-02T00:00:00Z", False),  # exclusive
    ({"operator": "before", "value": "2026-01-02T18:00:00Z"}, "2026-01-02T01:00:00Z", False),  # by day
    ({"operator": "after", "value": "2026-01-02T18:00:00Z"}, "2026-01-02T01:00:00Z", True),  # the day counts
    ({"operator": "after", "value": "2026-01-02"}, "2026-01-01T23:59:59Z", False),
    ({"operator": "after", "value": JAN_1}, JAN_1 + 5, True),
    ({"operator": "after", "value": "2026-01-01"}, "garbage", False),
    ({"operator": "between_dates", "min_value": "2026-01-01", "max_value": "2026-01-03"}, "2026-01-03T23:00:00Z",
     True),
    ({"operator": "between_dates", "min_value": "2026-01-01", "max_value": "2026-01-03"}, "2026-01-04", False),
    ({"operator": "between_dates", "min_value": "2026-01-02", "max_value": "2026-01-03"}, JAN_1 + DAY - 1, False),
    ({"operator": "exists"}, "", True),
    ({"operator": "exists"}, None, False),
    ({"operator": "not_exists"}, None, True),
    ({"operator": "not_exists"}, 0, False),
    ({"operator": "empty"}, None, True),
    ({"operator": "empty"}, "", True),
    ({"operator": "empty"}, [], True),
    ({"operator": "empty"}, " ", False),
    ({"operator": "less_or_equal", "value": 3}, 3, True),  # aliases
    ({"operator": "greater_than_or_equal", "value": 3}, 3, True),
    ({"operator": "not_contain", "value": "a"}, "b", True),
    ({"operator": "includes", "value": "a"}, "ba", True),
    ({"operator": "not_includes", "value": "a"}, "ba", False),
])
def test_operators(condition: dict[str, Any], value: object, expected: bool) -> None:
    assert holds(condition, value) is expected


@pytest.mark.parametrize(("condition", "pointer"), [
    ({}, "#/c/operator"),
    ({"operator": 3}, "#/c/operator"),
    ({"operator": "resembles", "value": "x"}, "#/c/operator"),
    ({"operator": "equals", "value": "x", "type": "color"}, "#/c/type"),
    ({"type": "boolean", "operator": "equals", "value": "maybe"}, "#/c/value"),
    ({"operator": "in_list"}, "#/c/values"),
    ({"operator": "in_list", "values": []}, "#/c/values"),
    ({"operator": "in_list", "values": "a"}, "#/c/values"),
    ({"operator": "in_list", "values": ["a"] * (MAX_VALUES + 1)}, "#/c/values"),
    ({"operator": "in_list", "values": ["a", {"b": 1}]}, "#/c/values/1"),
    ({"operator": "not_in_list", "values": ["a", "x" * (MAX_TEXT + 1)]}, "#/c/values/1"),
    ({"operator": "equals"}, "#/c/value"),
    ({"operator": "contains", "value": ["a"]}, "#/c/value"),
    ({"operator": "pattern", "value": "*" * (MAX_TEXT + 1)}, "#/c/value"),
    ({"operator": "between", "max_value": 2}, "#/c/min_value"),
    ({"operator": "between", "min_value": 1, "max_value": "two"}, "#/c/max_value"),
    ({"operator": "between", "min_value": 3, "max_value": 2}, "#/c/max_value"),
    ({"operator": "greater_than"}, "#/c/value"),
    ({"operator": "less_than", "value": "ten"}, "#/c/value"),
    ({"operator": "greater_than", "value": True}, "#/c/value"),
    ({"operator": "before", "value": "someday"}, "#/c/value"),
    ({"operator": "after"}, "#/c/value"),
    ({"operator": "between_dates", "min_value": "x", "max_value": "2026-01-01"}, "#/c/min_value"),
    ({"operator": "between_dates", "min_value": "2026-01-01"}, "#/c/max_value"),
    ({"operator": "between_dates", "min_value": "2026-01-02", "max_value": "2026-01-01"}, "#/c/max_value"),
])
def test_bad_conditions_are_refused_with_the_pointer_of_the_bad_field(condition: dict[str, Any],
                                                                      pointer: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        compile_condition(condition, "#/c")
    assert refused.value.pointer == pointer
    assert refused.value.code == "INVALID_DEFINITION"
    assert pointer in str(refused.value)


def test_limits_are_inclusive() -> None:
    assert holds({"operator": "equals", "value": "x" * MAX_TEXT}, "X" * MAX_TEXT)
    assert holds({"operator": "in_list", "values": [str(i) for i in range(MAX_VALUES)]}, 999)
