"""Calculated attribute definitions (mParticle's Platform API v2 shape) and their incremental per-profile state.

A definition names the events it reads (`data_point`, `conditions`), what it computes (`calculation_type`) and
over which time (`time_period`: all time, `since` a date, or `within` the last N days/weeks, rolling 24 h days).
State per profile is what the value needs, never the events: counters and extremes for all-time and `since`
values; one entry per contributing event (time, value, weight) for a rolling window, dropped as it rolls off, so a
value can be recomputed for any clock time and its next change time is known. Semantics in
docs/calculated-attributes.md.
"""

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaon.audiences.conditions import DAY_MS, as_time_ms
from kaon.audiences.errors import DefinitionError
from kaon.audiences.facts import Fact
from kaon.audiences.matching import EventMatch, compile_match, compile_tests
from kaon.model.values import as_number

CALCULATION_TYPES = ("count", "sum", "min", "max", "average", "most_frequent", "unique_values_count",
                     "first_occurrence", "last_occurrence", "first_occurrence_timestamp", "last_occurrence_timestamp",
                     "unique_list")
CATEGORIES = ("event_attribute", "product_attribute", "promotion_attribute")
NEEDS_ATTRIBUTE = ("sum", "min", "max", "average", "most_frequent", "unique_values_count", "first_occurrence",
                   "last_occurrence", "unique_list")
DISTINCT_SHOWN = 100  # unique_list and most_frequent consider the first 100 distinct values (mParticle)
DISTINCT_KEPT = 1_000  # distinct values a profile's state keeps per attribute (later new values are not kept)
WINDOW_ENTRIES = 10_000  # entries a rolling window keeps per profile (the newest)
MAX_WITHIN_DAYS = 3_650
MAX_VALUE = 256  # characters of a value kept in state (bounds a profile's state: 1,000 distinct values at most)

Value = str | list[str] | None


@dataclass(frozen=True)
class CalcDefinition:
    calculation_type: str
    match: EventMatch
    attribute: str | None  # lower-cased attribute name, None: the event itself
    category: str
    use_quantity: bool
    since_ms: int | None  # time_period since (inclusive)
    window_ms: int | None  # time_period within (rolling)

    def contributions(self, fact: Fact) -> list[tuple[Any, float]]:
        """(value, weight) pairs the event adds: one for the event, or one per qualifying product."""
        if not self.match.kind_matches(fact) or (self.since_ms is not None and fact.ts < self.since_ms):
            return []
        if self.category == "product_attribute":
            out: list[tuple[Any, float]] = []
            for product in fact.products:
                merged = {**fact.attributes, **product}
                if not all(t.passes(merged) for t in self.match.tests):
                    continue
                quantity = (as_number(product.get("quantity")) or 1.0) if self.use_quantity else 1.0
                if self.attribute is None:
                    out.append((None, quantity))
                elif not isinstance(product.get(self.attribute), dict | list | None):  # as an event's attribute
                    value = product[self.attribute]
                    number = as_number(value)
                    out.append((number * quantity if self.use_quantity and number is not None else value, quantity))
            return out
        if not self.match.matches(fact):
            return []
        if self.attribute is None:
            return [(None, 1.0)]
        value = fact.attributes.get(self.attribute)
        return [] if value is None or isinstance(value, dict | list) else [(value, 1.0)]


TOP_KEYS = frozenset({"recipe_type", "data_point", "datapoint", "conditions", "calculation_type", "time_period",
                      "seeding"})
POINT_KEYS = frozenset({"type", "event_name", "attribute_name", "event_type", "custom_event_type",
                        "attribute_category", "use_product_quantity"})


def _known(raw: dict[str, Any], allowed: frozenset[str], pointer: str) -> None:
    for key in raw:
        if key not in allowed:
            raise DefinitionError(f"{pointer}/{key}", f"unknown key {key!r}: one of {', '.join(sorted(allowed))}")


def parse_definition(raw: object, pointer: str = "#") -> CalcDefinition:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "a definition must be an object")
    calc = raw.get("calculation_type")
    if calc not in CALCULATION_TYPES:
        raise DefinitionError(f"{pointer}/calculation_type", f"must be one of {', '.join(CALCULATION_TYPES)}")
    _known(raw, TOP_KEYS, pointer)
    point = raw.get("data_point", raw.get("datapoint"))
    if not isinstance(point, dict):
        raise DefinitionError(f"{pointer}/data_point", "is required: an object naming the events to read")
    where = f"{pointer}/data_point"
    _known(point, POINT_KEYS, where)
    kind = point.get("type", "event")
    if kind not in ("event", "event_attribute"):
        raise DefinitionError(f"{where}/type", "must be `event` or `event_attribute` (events only, as in mParticle)")
    category = point.get("attribute_category")
    category = "event_attribute" if category is None else category
    if category not in CATEGORIES:
        raise DefinitionError(f"{where}/attribute_category", f"must be one of {', '.join(CATEGORIES)}")
    match = compile_match(point, where)
    if point.get("event_type") is None and point.get("event_name") is None:
        raise DefinitionError(where, "names no events: give `event_type`, `event_name` or both")
    match = EventMatch(match.event_type, match.name, match.custom_event_type,
                       compile_tests(raw.get("conditions"), f"{pointer}/conditions"), ())
    attribute = point.get("attribute_name")
    if attribute is not None and (not isinstance(attribute, str) or not attribute or len(attribute) > 256):
        raise DefinitionError(f"{where}/attribute_name", "must be a non-empty string of at most 256 characters")
    if calc in NEEDS_ATTRIBUTE and attribute is None:
        raise DefinitionError(f"{where}/attribute_name", f"is required for calculation_type {calc!r}")
    since_ms, window_ms = _time_period(raw.get("time_period"), f"{pointer}/time_period")
    return CalcDefinition(calc, match, attribute.lower() if attribute else None, category,
                          bool(point.get("use_product_quantity")), since_ms, window_ms)


def _time_period(raw: object, pointer: str) -> tuple[int | None, int | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "must be an object with `type` all, since or within")
    kind = raw.get("type", "all")
    if kind == "all":
        return None, None
    if kind == "since":
        since = as_time_ms(raw.get("date"))
        if since is None:
            raise DefinitionError(f"{pointer}/date", "is required for `since`: an ISO-8601 date or time (UTC)")
        return since, None
    if kind == "within":
        n, unit = raw.get("within"), raw.get("within_unit", "days")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DefinitionError(f"{pointer}/within", "must be a whole number of days or weeks, at least 1")
        if unit not in ("days", "weeks"):
            raise DefinitionError(f"{pointer}/within_unit", "must be `days` or `weeks`")
        days = n * (7 if unit == "weeks" else 1)
        if days > MAX_WITHIN_DAYS:
            raise DefinitionError(f"{pointer}/within", f"is at most {MAX_WITHIN_DAYS} days")
        return None, days * DAY_MS
    raise DefinitionError(f"{pointer}/type", "must be `all`, `since` or `within`")


def _key(value: Any) -> str:
    """A value as kept in state and shown: text, at most MAX_VALUE characters (longer ones are cut)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)[:MAX_VALUE]


def finite(x: float) -> float:
    """Sums stay finite (JSON has no infinity): beyond a float's range they stay at its largest value."""
    return x if math.isfinite(x) else math.copysign(sys.float_info.max, x)


def number_text(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# An aggregate (JSON-able dict): n weighted count, s sum and k numeric count, lo/hi extremes, f/l first and last
# [ts, key], v {key: [count, first ts]}.
Aggregate = dict[str, Any]


NEEDS: dict[str, frozenset[str]] = {
    "count": frozenset(),
    "sum": frozenset("s"), "average": frozenset("s"), "min": frozenset("x"), "max": frozenset("x"),
    "first_occurrence": frozenset("t"), "last_occurrence": frozenset("t"),
    "first_occurrence_timestamp": frozenset("t"), "last_occurrence_timestamp": frozenset("t"),
    "most_frequent": frozenset("v"), "unique_values_count": frozenset("v"), "unique_list": frozenset("v"),
}  # what an aggregate keeps per calculation: s sums, x extremes, t first/last, v distinct values


def add(agg: Aggregate, ts: int, value: Any, weight: float, needs: frozenset[str] = frozenset("sxtv")) -> None:
    agg["n"] = agg.get("n", 0) + weight
    key = "" if value is None else _key(value)
    if "t" in needs:
        agg["f"] = min(agg.get("f") or [ts, key], [ts, key])
        agg["l"] = max(agg.get("l") or [ts, key], [ts, key])
    if value is None:
        return
    number = as_number(value) if needs & {"s", "x"} else None
    if number is not None:
        if "s" in needs:
            agg["s"] = finite(agg.get("s", 0.0) + number)
            agg["k"] = agg.get("k", 0) + 1
        if "x" in needs:
            agg["k"] = agg.get("k", 0) + (0 if "s" in needs else 1)
            agg["lo"] = number if "lo" not in agg else min(agg["lo"], number)
            agg["hi"] = number if "hi" not in agg else max(agg["hi"], number)
    if "v" in needs:
        seen = agg.setdefault("v", {})
        held = seen.get(key)
        if held is not None:
            held[0] += weight
            held[1] = min(held[1], ts)
        elif len(seen) < DISTINCT_KEPT:
            seen[key] = [weight, ts]


def combine(a: Aggregate, b: Aggregate) -> Aggregate:
    """Two profiles' aggregates as one (a merge): counts and sums add, extremes and first/last by time."""
    out = dict(a)
    for k in ("n", "s", "k"):
        if k in b:
            out[k] = finite(out.get(k, 0) + b[k])
    if "lo" in b:
        out["lo"] = min(out.get("lo", b["lo"]), b["lo"])
    if "hi" in b:
        out["hi"] = max(out.get("hi", b["hi"]), b["hi"])
    if "f" in b:
        out["f"] = min(out.get("f") or b["f"], b["f"])
    if "l" in b:
        out["l"] = max(out.get("l") or b["l"], b["l"])
    if "v" in b:
        seen = {k: list(v) for k, v in out.get("v", {}).items()}
        for key, (count, first) in sorted(b["v"].items(), key=lambda kv: (kv[1][1], kv[0])):
            if key in seen:
                seen[key] = [seen[key][0] + count, min(seen[key][1], first)]
            elif len(seen) < DISTINCT_KEPT:
                seen[key] = [count, first]
        out["v"] = seen
    return out


def _distinct(agg: Aggregate) -> list[tuple[str, float, int]]:
    """The first DISTINCT_SHOWN distinct values by first occurrence (then value): (key, count, first ts)."""
    ranked = sorted(((k, c, t) for k, (c, t) in agg.get("v", {}).items()), key=lambda x: (x[2], x[0]))
    return ranked[:DISTINCT_SHOWN]


def value_of(calc: str, agg: Aggregate | None) -> Value:
    """The attribute's value (as mParticle: strings, ISO-8601 UTC times, a sorted list) from an aggregate."""
    if not agg or not agg.get("n"):
        return "0" if calc == "count" else None
    if calc == "count":
        return number_text(float(agg["n"]))
    if calc in ("sum", "average", "min", "max"):
        if not agg.get("k"):
            return None
        if calc == "sum":
            return number_text(float(agg["s"]))
        if calc == "average":
            return number_text(float(agg["s"]) / agg["k"])
        return number_text(float(agg["lo"] if calc == "min" else agg["hi"]))
    if calc == "first_occurrence":
        return str(agg["f"][1])
    if calc == "last_occurrence":
        return str(agg["l"][1])
    if calc == "first_occurrence_timestamp":
        return iso(int(agg["f"][0]))
    if calc == "last_occurrence_timestamp":
        return iso(int(agg["l"][0]))
    distinct = _distinct(agg)
    if not distinct:
        return None
    if calc == "unique_values_count":
        return str(len(agg.get("v", {})))
    if calc == "unique_list":
        return sorted(k for k, _, _ in distinct)
    return min(distinct, key=lambda x: (-x[1], x[0]))[0]  # most_frequent; ties alphabetical


# A profile's state for one attribute: {"a": aggregate} (all time, since) or {"w": [[ts, key|None, weight], ...]}.
State = dict[str, Any]


def apply(definition: CalcDefinition, state: State, fact: Fact) -> bool:
    """Add the event to the state; True when it contributed."""
    found = definition.contributions(fact)
    if not found:
        return False
    if definition.window_ms is None:
        agg = state.setdefault("a", {})
        needs = NEEDS[definition.calculation_type]
        for value, weight in found:
            add(agg, fact.ts, value, weight, needs)
    else:
        entries = state.setdefault("w", [])
        entries.extend([fact.ts, None if value is None else _key(value), weight] for value, weight in found)
        if len(entries) > WINDOW_ENTRIES:
            entries.sort(key=lambda e: e[0])
            del entries[: len(entries) - WINDOW_ENTRIES]
    return True


def merge_states(definition: CalcDefinition, a: State | None, b: State | None) -> State | None:
    if not a or not b:
        return a or b
    if definition.window_ms is None:
        return {"a": combine(a.get("a", {}), b.get("a", {}))}
    entries = sorted([*a.get("w", []), *b.get("w", [])], key=lambda e: e[0])
    return {"w": entries[-WINDOW_ENTRIES:]}


def prune(definition: CalcDefinition, state: State, now_ms: int) -> None:
    """Drop window entries that rolled off (the value no longer depends on them)."""
    if definition.window_ms is not None and state.get("w"):
        start = now_ms - definition.window_ms
        state["w"] = [e for e in state["w"] if e[0] > start]


def current(definition: CalcDefinition, state: State | None, now_ms: int) -> Value:
    if state is None:
        return None
    if definition.window_ms is None:
        return value_of(definition.calculation_type, state.get("a"))
    start = now_ms - definition.window_ms
    agg: Aggregate = {}
    needs = NEEDS[definition.calculation_type]
    for ts, key, weight in state.get("w", []):
        if ts > start:
            add(agg, ts, key, weight, needs)
    return value_of(definition.calculation_type, agg)


def next_change(definition: CalcDefinition, state: State | None, now_ms: int) -> int | None:
    """When the value may next change with no new event: the first window entry rolling off after now."""
    if state is None or definition.window_ms is None:
        return None
    ends = [ts + definition.window_ms for ts, _, _ in state.get("w", []) if ts + definition.window_ms > now_ms]
    return min(ends) if ends else None


def definition_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The definition as stored and shown: mParticle's keys (the `datapoint` spelling read as `data_point`)."""
    out = dict(raw)
    if "datapoint" in out and "data_point" not in out:
        out["data_point"] = out.pop("datapoint")
    out.setdefault("recipe_type", "event")
    out.setdefault("conditions", [])
    out.setdefault("time_period", {"type": "all"})
    return out
