"""Value conditions (`{"operator", "value", ...}`) shared by calculated attributes and audience criteria.

Strings compare case-insensitively; a list value matches a string operator when one of its items does (and the
`not_` operators when none does). Numbers accept numeric strings. Dates are ISO-8601 times (no zone: UTC) or unix
milliseconds, compared by UTC calendar day: `before` is exclusive, `after` inclusive, `between_dates` inclusive of
both days. `pattern` is a whole-value glob: `*` any run of characters, `?` one character.
"""

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from kaon.audiences.errors import DefinitionError
from kaon.model.values import as_number

DAY_MS = 86_400_000
MAX_TIME_MS = 2**53  # times beyond JavaScript's safe integers are not times anyone means
MAX_TEXT = 1_000  # longest value or pattern a condition holds
MAX_VALUES = 1_000  # longest `values` list of `in_list`
STRING_OPERATORS = ("equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with", "pattern",
                    "in_list", "not_in_list")
NUMBER_OPERATORS = ("greater_than", "greater_or_equal", "less_than", "less_than_or_equal", "between")
DATE_OPERATORS = ("before", "after", "between_dates")
PRESENCE_OPERATORS = ("exists", "not_exists", "empty")
OPERATORS = PRESENCE_OPERATORS + STRING_OPERATORS + NUMBER_OPERATORS + DATE_OPERATORS + ("is_true", "is_false")
ALIASES = {"less_or_equal": "less_than_or_equal", "greater_than_or_equal": "greater_or_equal",
           "not_contain": "not_contains", "includes": "contains", "not_includes": "not_contains"}
TYPES = ("string", "number", "boolean", "date", "list")


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> tuple[re.Pattern[str], ...]:
    """The pattern's pieces between `*`s, each a fixed-length regular expression (`?` is any one character)."""
    return tuple(re.compile(re.escape(piece).replace(r"\?", "."), re.S) for piece in pattern.split("*"))


def glob_match(pattern: str, text: str) -> bool:
    """Whole-text glob (`*`, `?`) without backtracking: the first piece at the start, the last at the end, those
    between leftmost in order (which is exact for globs) - each found by one scan of the text."""
    pieces = _glob(pattern)
    if len(pieces) == 1:
        return pieces[0].fullmatch(text) is not None
    found = pieces[0].match(text)
    if found is None:
        return False
    position = found.end()
    for piece in pieces[1:-1]:
        found = piece.search(text, position)
        if found is None:
            return False
        position = found.end()
    tail = len(text) - len(pattern.rsplit("*", 1)[1])
    return tail >= position and pieces[-1].fullmatch(text, tail) is not None


def as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def as_time_ms(value: object) -> int | None:
    """Unix ms of an ISO-8601 time or date (UTC when no zone) or of a number of unix milliseconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) and abs(value) <= MAX_TIME_MS else None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text) if len(text) <= 16 and int(text) <= MAX_TIME_MS else None
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
            except ValueError:
                return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return int(parsed.timestamp() * 1000)
        except (OverflowError, ValueError):
            return None
    return None


def day_start(ms: int) -> int:
    return ms - ms % DAY_MS


def _texts(value: object) -> list[str]:
    """The lower-cased strings a value offers to string operators (a list offers each item)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, float) and item.is_integer():
            out.append(str(int(item)))
        else:
            out.append(str(item).lower())
    return out


@dataclass(frozen=True)
class Condition:
    operator: str
    text: str = ""
    texts: frozenset[str] = frozenset()
    low: float = 0.0
    high: float = 0.0
    since_ms: int = 0
    until_ms: int = 0  # exclusive

    def matches(self, value: object) -> bool:
        return _TESTS[self.operator](self, value)


def _empty(value: object) -> bool:
    return value is None or value in ("", [])


def _any_text(test: Callable[[str], bool]) -> Callable[[Condition, object], bool]:
    return lambda _c, value: any(test(t) for t in _texts(value))


def _numeric(test: Callable[[Condition, float], bool]) -> Callable[[Condition, object], bool]:
    def run(c: Condition, value: object) -> bool:
        number = as_number(value)
        return number is not None and test(c, number)
    return run


def _dated(test: Callable[[Condition, int], bool]) -> Callable[[Condition, object], bool]:
    def run(c: Condition, value: object) -> bool:
        ms = as_time_ms(value)
        return ms is not None and test(c, ms)
    return run


_TESTS: dict[str, Callable[[Condition, object], bool]] = {
    "exists": lambda _c, v: v is not None,
    "not_exists": lambda _c, v: v is None,
    "empty": lambda _c, v: _empty(v),
    "equals": lambda c, v: c.text in _texts(v),
    "not_equals": lambda c, v: c.text not in _texts(v),
    "contains": lambda c, v: any(c.text in t for t in _texts(v)),
    "not_contains": lambda c, v: not any(c.text in t for t in _texts(v)),
    "starts_with": lambda c, v: any(t.startswith(c.text) for t in _texts(v)),
    "ends_with": lambda c, v: any(t.endswith(c.text) for t in _texts(v)),
    "pattern": lambda c, v: any(glob_match(c.text, t) for t in _texts(v)),
    "in_list": lambda c, v: any(t in c.texts for t in _texts(v)),
    "not_in_list": lambda c, v: not any(t in c.texts for t in _texts(v)),
    "greater_than": _numeric(lambda c, n: n > c.low),
    "greater_or_equal": _numeric(lambda c, n: n >= c.low),
    "less_than": _numeric(lambda c, n: n < c.low),
    "less_than_or_equal": _numeric(lambda c, n: n <= c.low),
    "between": _numeric(lambda c, n: c.low <= n <= c.high),
    "before": _dated(lambda c, ms: ms < c.since_ms),
    "after": _dated(lambda c, ms: ms >= c.since_ms),
    "between_dates": _dated(lambda c, ms: c.since_ms <= ms < c.until_ms),
    "is_true": lambda _c, v: as_bool(v) is True,
    "is_false": lambda _c, v: as_bool(v) is False,
}


def _text_of(raw: object, pointer: str) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if not isinstance(raw, str | int | float) or (isinstance(raw, float) and not math.isfinite(raw)):
        raise DefinitionError(pointer, "must be a string or a finite number")
    text = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
    if len(text) > MAX_TEXT:
        raise DefinitionError(pointer, f"is longer than {MAX_TEXT} characters")
    return text.lower()


def _number_of(raw: object, pointer: str) -> float:
    number = as_number(raw)
    if number is None:
        raise DefinitionError(pointer, "must be a number")
    return number


def _day_of(raw: object, pointer: str) -> int:
    ms = as_time_ms(raw)
    if ms is None:
        raise DefinitionError(pointer, "must be an ISO-8601 date or time, or unix milliseconds")
    return day_start(ms)


def compile_condition(raw: Mapping[str, Any], pointer: str) -> Condition:
    """A condition from its JSON (`operator` with `value`, `values`, or `min_value`/`max_value`)."""
    operator = raw.get("operator")
    if not isinstance(operator, str):
        raise DefinitionError(f"{pointer}/operator", f"is required: one of {', '.join(OPERATORS)}")
    operator = ALIASES.get(operator, operator)
    if operator not in OPERATORS:
        raise DefinitionError(f"{pointer}/operator", f"unknown operator {operator!r}: one of {', '.join(OPERATORS)}")
    kind = raw.get("type")
    if kind is not None and kind not in TYPES:
        raise DefinitionError(f"{pointer}/type", f"unknown type {kind!r}: one of {', '.join(TYPES)}")
    value = raw.get("value")
    if operator in PRESENCE_OPERATORS:
        return Condition(operator)
    if operator in ("is_true", "is_false"):
        return Condition(operator)
    if kind == "boolean" and operator in ("equals", "not_equals"):
        truth = as_bool(value)
        if truth is None:
            raise DefinitionError(f"{pointer}/value", "must be true or false")
        wanted = "is_true" if truth == (operator == "equals") else "is_false"
        return Condition(wanted)
    if operator in ("in_list", "not_in_list"):
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise DefinitionError(f"{pointer}/values", "must be a non-empty list")
        if len(values) > MAX_VALUES:
            raise DefinitionError(f"{pointer}/values", f"holds at most {MAX_VALUES} values")
        return Condition(operator, texts=frozenset(_text_of(v, f"{pointer}/values/{i}") for i, v in enumerate(values)))
    if operator in STRING_OPERATORS:
        if value is None:
            raise DefinitionError(f"{pointer}/value", "is required")
        return Condition(operator, text=_text_of(value, f"{pointer}/value"))
    if operator == "between":
        low = _number_of(raw.get("min_value"), f"{pointer}/min_value")
        high = _number_of(raw.get("max_value"), f"{pointer}/max_value")
        if low > high:
            raise DefinitionError(f"{pointer}/max_value", "must not be less than min_value")
        return Condition(operator, low=low, high=high)
    if operator in NUMBER_OPERATORS:
        return Condition(operator, low=_number_of(value, f"{pointer}/value"))
    if operator == "between_dates":
        since = _day_of(raw.get("min_value"), f"{pointer}/min_value")
        until = _day_of(raw.get("max_value"), f"{pointer}/max_value") + DAY_MS
        if until <= since:
            raise DefinitionError(f"{pointer}/max_value", "must not be before min_value")
        return Condition(operator, since_ms=since, until_ms=until)
    return Condition(operator, since_ms=_day_of(value, f"{pointer}/value"))
