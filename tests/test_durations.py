"""The shared parser of durations and points in time: every accepted form, every refusal, never a crash."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaon.durations import MAX_MS, DurationError, parse_duration, parse_point

NOW = 1_764_075_000_000


@pytest.mark.parametrize(("given_", "ms"), [
    ("90s", 90_000), ("30m", 1_800_000), ("6h", 21_600_000), ("7d", 604_800_000), ("2w", 1_209_600_000),
    ("250ms", 250), ("1h30m", 5_400_000), ("1d12h", 129_600_000), (" 6H ", 21_600_000), ("0s", 0),
    ("90000", 90_000), ("6", 6), (90_000, 90_000), (0, 0),
])
def test_durations_in_every_form(given_: str | int, ms: int) -> None:
    assert parse_duration(given_) == ms


@pytest.mark.parametrize("given_", ["", "h", "6y", "-6h", "1.5h", "6 h", "6hours", "h6", "six hours",
                                    -1, True, MAX_MS + 1, "99999999999999999"])
def test_what_is_not_a_duration_is_refused_with_the_forms(given_: str | int) -> None:
    with pytest.raises(DurationError) as refused:
        parse_duration(given_)
    assert refused.value.code == "INVALID_DURATION"
    assert "6h" in str(refused.value) or "between 0 and" in str(refused.value)


@pytest.mark.parametrize(("given_", "ms"), [
    ("1764075000000", 1_764_075_000_000), (1_764_075_000_000, 1_764_075_000_000), (0, 0),
    ("6h", NOW - 21_600_000), ("7d", NOW - 604_800_000), ("90s", NOW - 90_000),
    ("2025-11-25T12:00:00Z", int(datetime(2025, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)),
    ("2025-11-25T12:00:00", int(datetime(2025, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)),
    ("2025-11-25T13:00:00+01:00", int(datetime(2025, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)),
    ("2025-11-25", int(datetime(2025, 11, 25, tzinfo=UTC).timestamp() * 1000)),
    ("100000w", 0),  # longer ago than the epoch: the epoch
])
def test_points_in_time_in_every_form(given_: str | int, ms: int) -> None:
    assert parse_point(given_, NOW) == ms


@pytest.mark.parametrize("given_", ["yesterday", "", "-5", "1969-12-31T00:00:00Z", "2025-13-01", -1, False,
                                    "12345678901234567"])
def test_what_is_not_a_point_in_time_is_refused(given_: str | int) -> None:
    with pytest.raises(DurationError) as refused:
        parse_point(given_, NOW)
    assert "point in time" in str(refused.value)


@given(st.one_of(st.text(max_size=30), st.integers()))
def test_any_input_parses_or_is_refused_never_crashes(value: str | int) -> None:
    for parse in (parse_duration, lambda v: parse_point(v, NOW)):
        try:
            ms = parse(value)
        except DurationError:
            continue
        assert 0 <= ms <= MAX_MS
