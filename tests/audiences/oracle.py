"""A reference evaluator of calculated attributes and audiences, written from docs/calculated-attributes.md and
docs/audiences.md alone: it reads a profile's full event history at a clock time, every event every time.

It shares no code with `kaon.audiences` (no state, no incremental updates, no next change times): what it answers
is what the docs say the value or the membership is, so the engine can be checked against it.
"""

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SHOWN = 100  # unique_list and most_frequent consider the first 100 distinct values
KEPT = 1_000  # unique_values_count counts at most this many distinct values
ACTION_FIELDS = ("total_amount", "tax_amount", "shipping_amount", "transaction_id", "affiliation", "coupon_code",
                 "checkout_step")
PRODUCT_FIELDS = ("id", "name", "brand", "category", "variant", "position", "price", "quantity", "coupon_code",
                  "total_product_amount")
Value = str | list[str] | None


@dataclass(frozen=True)
class Event:
    """One event as it was sent (mParticle's fields), with the time it counts by."""

    key: str  # its source message id
    ts: int
    event_type: str  # custom_event or commerce_event
    name: str | None = None  # a custom event's event_name (or a commerce event's, which is rarely given)
    custom_event_type: str | None = None  # as sent (a custom event without one is mParticle's "other")
    action: str | None = None  # a commerce event's product action
    action_fields: Mapping[str, Any] = field(default_factory=dict)  # total_amount, tax_amount, ...
    currency_code: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)  # custom attributes as sent
    products: Sequence[Mapping[str, Any]] = ()  # product fields, with custom ones under "custom_attributes"


# What an event offers a definition.

def names_of(event: Event) -> set[str]:
    """The names an event answers to, lower-cased: a custom event's name; a commerce event's event_name and its
    product action."""
    found = {event.name, event.action} if event.event_type == "commerce_event" else {event.name}
    return {n.lower() for n in found if n}


def custom_type_of(event: Event) -> str | None:
    if event.event_type == "custom_event":
        return (event.custom_event_type or "other").lower()
    return event.custom_event_type.lower() if event.custom_event_type else None


def attributes_of(event: Event) -> dict[str, Any]:
    """Custom attributes, and for a commerce event its product action's fields and currency code (names
    compare case-insensitively: lower-cased here)."""
    out = {k.lower(): v for k, v in event.attributes.items()}
    if event.event_type == "commerce_event":
        for k in ACTION_FIELDS:
            if event.action_fields.get(k) is not None:
                out[k] = event.action_fields[k]
        if event.currency_code is not None:
            out["currency_code"] = event.currency_code
    return out


def product_attributes_of(product: Mapping[str, Any]) -> dict[str, Any]:
    out = {k.lower(): v for k, v in (product.get("custom_attributes") or {}).items()}
    for k in PRODUCT_FIELDS:
        if product.get(k) is not None:
            out[k] = product[k]
    return out


def products_of(event: Event) -> list[dict[str, Any]]:
    return [product_attributes_of(p) for p in event.products] if event.event_type == "commerce_event" else []


# Values as text and numbers.

def number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def text(value: object) -> str:
    """A value as text, the way values and comparisons read it: 12.0 is "12", true is "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    return str(value)


_NUMERIC = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def number(value: object) -> float | None:
    """A number, or a numeric string; None otherwise (booleans are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        found = float(value)
        return found if math.isfinite(found) else None
    return None


def time_ms(value: object) -> int | None:
    """Unix ms of an ISO-8601 date or time (UTC unless it says otherwise) or of unix milliseconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    if value.strip().isdigit():
        return int(value.strip())
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - EPOCH) // timedelta(milliseconds=1)


def day_of(ms: int) -> int:
    return ms // DAY


def iso(ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def duration_ms(raw: str) -> int:
    """`90m`, `24h`, `7d`, `2w` (the forms definitions here use)."""
    units = {"m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY}
    found = re.fullmatch(r"(\d+)([mhdw])", raw.strip().lower())
    assert found, raw
    return int(found.group(1)) * units[found.group(2)]


# Conditions (docs/audiences.md#conditions).

def _texts(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [text(item).lower() for item in items if item is not None]


def _glob(pattern: str, candidate: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, candidate, re.DOTALL) is not None


def condition_holds(condition: Mapping[str, Any], value: object) -> bool:
    op = condition["operator"]
    if condition.get("type") == "boolean" and op in ("equals", "not_equals"):
        wanted = text(condition["value"]).lower() == "true"
        truth = _truth(value)
        return truth is not None and (truth == wanted) == (op == "equals")
    if op == "exists":
        return value is not None
    if op == "not_exists":
        return value is None
    if op == "empty":
        return value in (None, "", [])
    if op == "is_true":
        return _truth(value) is True
    if op == "is_false":
        return _truth(value) is False
    if op in ("in_list", "not_in_list"):
        wanted_set = {text(v).lower() for v in condition["values"]}
        hit = any(t in wanted_set for t in _texts(value))
        return hit if op == "in_list" else not hit
    if op in ("equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with", "pattern"):
        want = text(condition["value"]).lower()
        texts = _texts(value)
        if op == "equals":
            return want in texts
        if op == "not_equals":
            return want not in texts
        if op == "contains":
            return any(want in t for t in texts)
        if op == "not_contains":
            return not any(want in t for t in texts)
        if op == "starts_with":
            return any(t.startswith(want) for t in texts)
        if op == "ends_with":
            return any(t.endswith(want) for t in texts)
        return any(_glob(want, t) for t in texts)
    if op in ("greater_than", "greater_or_equal", "less_than", "less_than_or_equal", "between"):
        n = number(value)
        if n is None:
            return False
        if op == "between":
            low, high = number(condition["min_value"]), number(condition["max_value"])
            assert low is not None and high is not None
            return low <= n <= high
        bound = number(condition["value"])
        assert bound is not None
        return {"greater_than": n > bound, "greater_or_equal": n >= bound, "less_than": n < bound,
                "less_than_or_equal": n <= bound}[op]
    if op in ("before", "after", "between_dates"):
        ms = time_ms(value)
        if ms is None:
            return False
        day = day_of(ms)
        if op == "between_dates":
            return day_of(_ms(condition["min_value"])) <= day <= day_of(_ms(condition["max_value"]))
        limit = day_of(_ms(condition["value"]))
        return day < limit if op == "before" else day >= limit
    raise AssertionError(f"the oracle does not know operator {op!r}")


def _ms(raw: object) -> int:
    found = time_ms(raw)
    assert found is not None, raw
    return found


def _truth(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def all_hold(conditions: Iterable[Mapping[str, Any]], attributes: Mapping[str, Any]) -> bool:
    return all(condition_holds(c, attributes.get(str(c["attribute_name"]).lower())) for c in conditions)


# Calculated attributes (docs/calculated-attributes.md).

@dataclass(frozen=True)
class Contribution:
    ts: int
    value: object  # None: the event (or product) itself, for counts and timestamps
    weight: float


def _kind_matches(point: Mapping[str, Any], event: Event, name_key: str) -> bool:
    if point.get("event_type") is not None and event.event_type != point["event_type"]:
        return False
    wanted = point.get(name_key)
    if wanted is not None and str(wanted).lower() not in names_of(event):
        return False
    wanted_type = point.get("custom_event_type")
    return wanted_type is None or custom_type_of(event) == str(wanted_type).lower()


def since_ms(definition: Mapping[str, Any]) -> int | None:
    period = definition.get("time_period") or {"type": "all"}
    return _ms(period["date"]) if period.get("type") == "since" else None


def window_ms(definition: Mapping[str, Any]) -> int | None:
    period = definition.get("time_period") or {"type": "all"}
    if period.get("type") != "within":
        return None
    return int(period["within"]) * (7 if period.get("within_unit") == "weeks" else 1) * DAY


def contributions(definition: Mapping[str, Any], event: Event) -> list[Contribution]:
    """What one event adds to a calculated attribute (its `since` date applied; the window is the caller's)."""
    point = definition["data_point"]
    if not _kind_matches(point, event, "event_name"):
        return []
    since = since_ms(definition)
    if since is not None and event.ts < since:
        return []
    attribute = point.get("attribute_name")
    wanted = str(attribute).lower() if attribute else None
    conditions = definition.get("conditions") or []
    if point.get("attribute_category") == "product_attribute":
        out = []
        for product in products_of(event):
            if not all_hold(conditions, {**attributes_of(event), **product}):
                continue
            quantity = 1.0
            if point.get("use_product_quantity"):
                quantity = number(product.get("quantity")) or 1.0
            if wanted is None:
                out.append(Contribution(event.ts, None, quantity))
                continue
            value = product.get(wanted)
            if value is None or isinstance(value, list | dict):
                continue
            n = number(value)
            if point.get("use_product_quantity") and n is not None:
                value = n * quantity
            out.append(Contribution(event.ts, value, quantity))
        return out
    if not all_hold(conditions, attributes_of(event)):
        return []
    if wanted is None:
        return [Contribution(event.ts, None, 1.0)]
    value = attributes_of(event).get(wanted)
    if value is None or isinstance(value, list | dict):
        return []
    return [Contribution(event.ts, value, 1.0)]


def ever_contributed(definition: Mapping[str, Any], history: Iterable[Event]) -> bool:
    """Whether any event of the history contributed (at any time): only then can a profile show a value."""
    return any(contributions(definition, e) for e in history)


def calculated_value(definition: Mapping[str, Any], history: Iterable[Event], now: int) -> Value:
    """The value at `now`: what counts is every contribution inside the time period (`null`, or "0" for a count,
    when there is none)."""
    window = window_ms(definition)
    found = [c for e in history for c in contributions(definition, e) if window is None or now < c.ts + window]
    calc = definition["calculation_type"]
    if not found:
        return "0" if calc == "count" else None
    if calc == "count":
        return number_text(sum(c.weight for c in found))
    if calc in ("sum", "average", "min", "max"):
        numbers = [n for n in (number(c.value) for c in found) if n is not None]
        if not numbers:
            return None
        if calc == "sum":
            return number_text(sum(numbers))
        if calc == "average":
            return number_text(sum(numbers) / len(numbers))
        return number_text(min(numbers) if calc == "min" else max(numbers))
    if calc == "first_occurrence_timestamp":
        return iso(min(c.ts for c in found))
    if calc == "last_occurrence_timestamp":
        return iso(max(c.ts for c in found))
    if calc == "first_occurrence":
        return min((c.ts, text(c.value)) for c in found)[1]
    if calc == "last_occurrence":
        return max((c.ts, text(c.value)) for c in found)[1]
    counts: dict[str, float] = {}
    first: dict[str, int] = {}
    for c in found:
        key = text(c.value)
        counts[key] = counts.get(key, 0.0) + c.weight
        first[key] = min(first.get(key, c.ts), c.ts)
    shown = sorted(counts, key=lambda k: (first[k], k))[:SHOWN]
    if calc == "unique_values_count":
        return str(min(len(counts), KEPT))
    if calc == "unique_list":
        return sorted(shown)
    assert calc == "most_frequent", calc
    return min(shown, key=lambda k: (-counts[k], k))


# Audiences (docs/audiences.md).

def event_matches(matcher: Mapping[str, Any], event: Event) -> bool:
    """An event matcher: event_type, name, custom_event_type, conditions, product_conditions (one product)."""
    if not _kind_matches(matcher, event, "name"):
        return False
    if not all_hold(matcher.get("conditions") or [], attributes_of(event)):
        return False
    wanted = matcher.get("product_conditions") or []
    return not wanted or any(all_hold(wanted, p) for p in products_of(event))


@dataclass(frozen=True)
class Judge:
    history: Sequence[Event]
    calculated: Mapping[str, Value]  # lower-cased names of the active calculated attributes: their values now
    lookback_ms: int
    now: int

    def counted(self, ts: int, within: object) -> bool:
        """Within the lookback (and the `within` given) of now."""
        return self.now < ts + self.lookback_ms and (within is None or self.now < ts + duration_ms(str(within)))

    def holds(self, node: Mapping[str, Any]) -> bool:
        (kind, body), = node.items()
        if kind == "all":
            return all(self.holds(n) for n in body)
        if kind == "any":
            return any(self.holds(n) for n in body)
        if kind == "not":
            return not self.holds(body)
        if kind == "event":
            return self.event(body)
        if kind == "sequence":
            return self.sequence(body)
        if kind == "calculated_attribute":
            return condition_holds(body, self.calculated.get(str(body["name"]).lower()))
        raise AssertionError(f"the oracle does not know node {kind!r}")

    def event(self, body: Mapping[str, Any]) -> bool:
        matching = [e for e in self.history if event_matches(body, e) and self.counted(e.ts, body.get("within"))]
        between = body.get("between")
        if between is not None:
            first, last = day_of(_ms(between["from"])), day_of(_ms(between["to"]))
            matching = [e for e in matching if first <= day_of(e.ts) <= last]
        n = len(matching)
        (how, raw), = (body.get("frequency") or {"at_least": 1}).items()
        bound = int(raw)
        return {"at_least": n >= bound, "at_most": n <= bound, "exactly": n == bound}[how]

    def sequence(self, body: Mapping[str, Any]) -> bool:
        negated = "then_not" in body
        then = body["then_not"] if negated else body["then"]
        gap = duration_ms(body["gap"])
        for e in self.history:
            if not event_matches(body["first"], e) or not self.counted(e.ts, body.get("within")):
                continue
            followed = any(event_matches(then, f) and e.ts <= f.ts <= e.ts + gap for f in self.history if f is not e)
            if negated and not followed and self.now >= e.ts + gap:
                return True
            if not negated and followed:
                return True
        return False


def is_member(definition: Mapping[str, Any], lookback_days: int | None, history: Sequence[Event],
              calculated: Mapping[str, Value], now: int) -> bool:
    """Whether a profile with this history (and these calculated values now) is in the audience at `now`."""
    judge = Judge(history, {k.lower(): v for k, v in calculated.items()}, (lookback_days or 30) * DAY, now)
    return judge.holds(definition)
