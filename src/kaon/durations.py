"""Durations and points in time as people type them: the one parser the admin API and the CLI share.

A duration is integer milliseconds (`90000`) or a number with a unit, several units adding up: `90s`, `30m`,
`6h`, `7d`, `2w`, `1h30m`, `250ms`. A point in time is unix milliseconds (`1764075000000`), an ISO-8601 time
(`2025-11-25T12:00:00Z`; no zone means UTC), or a duration meaning "that long before now" (`6h`).
"""

import re
from datetime import UTC, datetime

from kaon.errors import KaonError

UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# JavaScript's largest safe integer: every value stays exact in a browser's JSON.
MAX_MS = 2**53
_PART = re.compile(r"(\d{1,16})(ms|s|m|h|d|w)")
_DURATION = re.compile(r"(?:\d{1,16}(?:ms|s|m|h|d|w))+")
DURATION_FORMS = "integer milliseconds or a number with a unit (ms, s, m, h, d, w), e.g. 90s, 30m, 6h, 7d, 1h30m"
POINT_FORMS = "unix milliseconds, an ISO-8601 time, or a duration back from now (e.g. 6h, 7d)"


class DurationError(KaonError, ValueError):
    """A value that is not a duration (or point in time) in any accepted form; the message names the forms."""

    code = "INVALID_DURATION"


def parse_duration(value: str | int) -> int:
    """Milliseconds of a duration; DurationError when it is not one (negative, empty, unknown unit, too long)."""
    if isinstance(value, bool):  # bool is an int to Python, never a duration to a user
        raise DurationError(f"{value!r} is not a duration: give {DURATION_FORMS}")
    if isinstance(value, int):
        return _bounded(value, value)
    text = value.strip().lower()
    if text.isascii() and text.isdigit() and len(text) <= 16:
        return _bounded(int(text), value)
    if not _DURATION.fullmatch(text):
        raise DurationError(f"{value!r} is not a duration: give {DURATION_FORMS}")
    return _bounded(sum(int(n) * UNITS_MS[unit] for n, unit in _PART.findall(text)), value)


def parse_point(value: str | int, now_ms: int) -> int:
    """Unix milliseconds of a point in time; DurationError when the value is none of the accepted forms."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a point in time: give {POINT_FORMS}")
    if isinstance(value, int):
        return _bounded(value, value, what="point in time")
    text = value.strip()
    if text.isascii() and text.isdigit():
        if len(text) > 16:
            raise DurationError(f"{value!r} is not a point in time: unix milliseconds are at most {MAX_MS}")
        return _bounded(int(text), value, what="point in time")
    if _DURATION.fullmatch(text.lower()):
        return max(0, now_ms - parse_duration(text))
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise DurationError(f"{value!r} is not a point in time: give {POINT_FORMS}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _bounded(int(parsed.timestamp() * 1000), value, what="point in time")


def _bounded(ms: int, given: object, what: str = "duration") -> int:
    if not 0 <= ms <= MAX_MS:
        raise DurationError(f"{given!r} is not a {what}: it must be between 0 and {MAX_MS} milliseconds")
    return ms
