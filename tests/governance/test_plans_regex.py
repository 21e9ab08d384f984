"""Plan patterns: RE2 (linear time); ECMA-262 features RE2 cannot run refused by name; length capped."""

import pytest

from kaon.governance.plans_document import check_version_document
from kaon.governance.plans_regex import MAX_PATTERN_LENGTH, PatternRefused, compile_pattern
from kaon.governance.plans_schema import compile_schema, validate


def point(pattern: str) -> dict[str, object]:
    return {"data_points": [{"match": {"type": "user_attributes", "criteria": {}}, "validator": {
        "type": "json_schema", "definition": {"properties": {"code": {"type": "string", "pattern": pattern}}}}}]}


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?<n>a)\k<n>", r"a(?=b)", r"a(?!b)", r"(?<=a)b", r"(?<!a)b"])
def test_backreferences_and_lookaround_are_refused_with_the_pattern_and_its_place(pattern: str) -> None:
    errors = check_version_document(point(pattern), "#/version_document")
    assert [(e["code"], e["error_type"], e["keyword"], e["schema_pointer"]) for e in errors] == [
        ("INVALID_PLAN", "unsupported_pattern", "pattern",
         "#/version_document/data_points/0/validator/definition/properties/code/pattern")]
    assert repr(pattern) in errors[0]["message"]
    assert "RE2" in errors[0]["message"]


def test_an_escaped_backslash_before_a_digit_is_no_backreference() -> None:
    assert compile_pattern(r"^\\1$").search("\\1") is not None


def test_a_pattern_over_the_cap_is_refused() -> None:
    with pytest.raises(PatternRefused) as refused:
        compile_pattern("a" * (MAX_PATTERN_LENGTH + 1))
    assert refused.value.error_type == "pattern_too_long"
    errors = check_version_document(point("a" * (MAX_PATTERN_LENGTH + 1)), "#")
    assert errors[0]["error_type"] == "pattern_too_long"


def test_nested_quantifiers_answer_without_backtracking() -> None:
    node = compile_schema({"type": "string", "pattern": "^(a+)+$"})
    out: list[object] = []
    validate(node, "a" * 5000 + "!", "#", "code", out)  # exponential under a backtracking engine
    assert [v.keyword for v in out] == ["pattern"]  # type: ignore[attr-defined]
    out.clear()
    validate(node, "a" * 5000, "#", "code", out)
    assert out == []
