"""Data plans' patterns under RE2: what compiles, what is refused and why, and matching anywhere."""

import pytest

from kaon.governance.patterns import MAX_PATTERN_CHARS, PatternError, compile_pattern


def test_patterns_match_anywhere_unless_anchored() -> None:
    assert compile_pattern(r"\d{3}").search("ab123") is not None
    assert compile_pattern(r"^\d{3}$").search("ab123") is None
    assert compile_pattern("^é+$").search("éé") is not None  # values are text, not bytes


def test_a_catastrophic_pattern_is_answered() -> None:
    assert compile_pattern("^(a+)+$").search("a" * 10_000 + "!") is None


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b"])
def test_features_without_linear_time_are_unsupported(pattern: str) -> None:
    with pytest.raises(PatternError, match="linear time") as raised:
        compile_pattern(pattern)
    assert raised.value.unsupported


@pytest.mark.parametrize("pattern", ["(", "[a-", "a{2,1}", "a" * (MAX_PATTERN_CHARS + 1), "(a{999}){999}"])
def test_broken_oversized_or_huge_patterns_are_invalid(pattern: str) -> None:
    with pytest.raises(PatternError) as raised:
        compile_pattern(pattern)
    assert not raised.value.unsupported
