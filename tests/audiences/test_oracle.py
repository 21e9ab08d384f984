"""Property: Kaon's calculated values and audience memberships equal the reference evaluator's (oracle.py) at
every clock time, whatever the arrival order.

Hypothesis draws a world: three people, custom and commerce events over ~40 days (sent at a clock time, some late,
some without a timestamp, some several to a batch), a few calculated attribute and audience definitions activated
at some step (some after history exists, with events arriving before or in the middle of their backfill), maybe a
merge of two people's profiles (and its undoing), and clock times right at the ends of windows, lookbacks and
sequence deadlines. The world runs through the real process stage on a fresh store with a fixed clock; at each
step, once no backfill is pending and the scheduler has run at that time, every live profile's values and every
audience's members (and its log of entries and exits) must be what the oracle computes from the profile's history.

Kaon shows a calculated attribute only once an event contributed inside its window (an event already outside it
when read, live or by a backfill, does not): a value Kaon does not show is compared as null ("0" for a count), and
audience criteria on counts are false on "0".
"""

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from audiences import oracle
from audiences.oracle import DAY, HOUR, MINUTE, Event
from kaon.audiences import backfill, service
from kaon.audiences.backfill import run_backfills, run_some
from kaon.audiences.engine import current_values
from kaon.audiences.schedule import run_due_changes
from kaon.audiences.store import MemberStore
from kaon.identity.merge import merge, unmerge
from kaon.log.base import KIND_MPARTICLE_BULK
from kaon.store.tx import transaction
from support.pipeline import NOW, Pipeline, a_pipeline

T0 = NOW - NOW % DAY - 40 * DAY  # midnight UTC, 40 days before the harness's NOW
PEOPLE = ("c0", "c1", "c2")


def day(n: int) -> str:
    return oracle.iso(T0 + n * DAY)[:10]


# The world.

@dataclass(frozen=True)
class Sent:
    person: str  # the customer id the batch carries
    event: Event
    timed: bool  # False: sent without a timestamp (it counts by the receive time, the step's clock)
    joins: bool = False  # in the batch of the arrival before it, when that is the same person's


@dataclass(frozen=True)
class Calc:
    name: str
    definition: dict[str, Any]


@dataclass(frozen=True)
class Audience:
    name: str
    definition: dict[str, Any]
    lookback_days: int | None


@dataclass
class Step:
    clock: int
    arrivals: list[Sent] = field(default_factory=list)  # in arrival order: one bulk request
    activate: list[str] = field(default_factory=list)  # definition names, activated at the start of the step
    pages: int = 0  # backfill pages to run before the step's events (they arrive in the middle of a backfill)
    backfill: bool = False  # run the pending backfills to their end after the step's events
    merge: tuple[str, str] | None = None  # (survivor's person, merged person)
    unmerge: bool = False  # undo the merge


@dataclass
class World:
    calcs: list[Calc]
    audiences: list[Audience]
    steps: list[Step]
    pages: tuple[int, int] = (backfill.EVENTS_PER_PAGE, backfill.PROFILES_PER_PAGE)  # a backfill's page sizes


# Drawing worlds.

CATEGORIES = ("shoes", "Hats", "SHOES", "bags")
PRICES: tuple[object, ...] = (3, 4.5, "7.5", "n/a", 10, 0)


@st.composite
def custom_events(draw: st.DrawFn, key: str, ts: int) -> Event:
    attributes: dict[str, Any] = {}
    if draw(st.booleans()):
        attributes["Category"] = draw(st.sampled_from(CATEGORIES))
    if draw(st.booleans()):
        attributes["price"] = draw(st.sampled_from(PRICES))
    if draw(st.integers(0, 3)) == 0:
        attributes["tags"] = draw(st.sampled_from([["a", "shoes"], ["B"]]))
    return Event(key=key, ts=ts, event_type="custom_event", name=draw(st.sampled_from(["View", "search"])),
                 custom_event_type=draw(st.sampled_from([None, "navigation", "Search", "other"])),
                 attributes=attributes)


@st.composite
def products(draw: st.DrawFn) -> dict[str, Any]:
    product: dict[str, Any] = {"id": draw(st.sampled_from(["p1", "p2"]))}
    if draw(st.integers(0, 3)):
        product["category"] = draw(st.sampled_from(CATEGORIES))
    price = draw(st.sampled_from([2, 3.5, 10, None]))
    if price is not None:
        product["price"] = price
    quantity = draw(st.sampled_from([None, 1, 2, 3]))
    if quantity is not None:
        product["quantity"] = quantity
    if draw(st.booleans()):
        product["custom_attributes"] = {"Color": draw(st.sampled_from(["red", "Blue"]))}
    return product


@st.composite
def commerce_events(draw: st.DrawFn, key: str, ts: int) -> Event:
    fields: dict[str, Any] = {}
    amount = draw(st.sampled_from([None, 0.5, 5, 12.5, 20]))
    if amount is not None:
        fields["total_amount"] = amount
    attributes = {"Category": draw(st.sampled_from(CATEGORIES))} if draw(st.integers(0, 3)) == 0 else {}
    return Event(key=key, ts=ts, event_type="commerce_event",
                 name=draw(st.sampled_from([None, None, "Order Completed"])),
                 action=draw(st.sampled_from(["add_to_cart", "purchase"])), action_fields=fields,
                 currency_code=draw(st.sampled_from([None, "EUR", "usd"])), attributes=attributes,
                 products=draw(st.lists(products(), max_size=2)))


# Calculated attribute data points: (data point, whether it names an attribute).
POINTS: tuple[tuple[dict[str, Any], bool], ...] = (
    ({"event_type": "custom_event", "event_name": "view", "attribute_name": "category"}, True),
    ({"event_type": "custom_event", "attribute_name": "Price"}, True),
    ({"event_type": "commerce_event", "event_name": "Purchase", "attribute_name": "total_amount"}, True),
    ({"event_type": "commerce_event", "attribute_name": "price", "attribute_category": "product_attribute",
      "use_product_quantity": True}, True),
    ({"event_type": "commerce_event", "event_name": "purchase", "attribute_name": "category",
      "attribute_category": "product_attribute"}, True),
    ({"event_type": "commerce_event", "attribute_category": "product_attribute", "use_product_quantity": True}, False),
    ({"event_name": "SEARCH"}, False),
    ({"event_type": "custom_event", "custom_event_type": "other"}, False),
    ({"event_type": "commerce_event", "event_name": "add_to_cart"}, False),
    ({"event_name": "order completed", "attribute_name": "total_amount"}, True),
    ({"event_type": "commerce_event", "attribute_name": "color", "attribute_category": "product_attribute"}, True),
)
CALC_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"type": "string", "operator": "equals", "attribute_name": "category", "value": "shoes"},
    {"operator": "in_list", "attribute_name": "Category", "values": ["hats", "bags"]},
    {"operator": "equals", "attribute_name": "currency_code", "value": "EUR"},
    {"operator": "greater_than", "attribute_name": "price", "value": 3},
    {"operator": "not_exists", "attribute_name": "category"},
    {"operator": "contains", "attribute_name": "tags", "value": "shoe"},
    {"operator": "equals", "attribute_name": "color", "value": "blue"},
)
WITH_ATTRIBUTE = ("count", "sum", "min", "max", "average", "most_frequent", "unique_values_count", "first_occurrence",
                  "last_occurrence", "first_occurrence_timestamp", "last_occurrence_timestamp", "unique_list")
WITHOUT_ATTRIBUTE = ("count", "first_occurrence_timestamp", "last_occurrence_timestamp")


@st.composite
def calc_definitions(draw: st.DrawFn) -> dict[str, Any]:
    point, named = draw(st.sampled_from(POINTS))
    definition: dict[str, Any] = {
        "data_point": dict(point),
        "calculation_type": draw(st.sampled_from(WITH_ATTRIBUTE if named else WITHOUT_ATTRIBUTE)),
        "conditions": draw(st.lists(st.sampled_from(CALC_CONDITIONS), max_size=1)),
    }
    period = draw(st.sampled_from(["none", "all", "since", "since_time", "within", "weeks"]))
    if period == "all":
        definition["time_period"] = {"type": "all"}
    elif period == "since":
        definition["time_period"] = {"type": "since", "date": day(draw(st.integers(0, 40)))}
    elif period == "since_time":
        definition["time_period"] = {"type": "since", "date": oracle.iso(T0 + draw(st.integers(0, 160)) * 6 * HOUR)}
    elif period == "within":
        definition["time_period"] = {"type": "within", "within": draw(st.sampled_from([1, 2, 7])),
                                     "within_unit": "days"}
    elif period == "weeks":
        definition["time_period"] = {"type": "within", "within": 1, "within_unit": "weeks"}
    return definition


SHOES = {"attribute_name": "category", "operator": "equals", "value": "shoes"}
MATCHERS: tuple[dict[str, Any], ...] = (
    {"event_type": "commerce_event", "name": "purchase"},
    {"event_type": "commerce_event", "name": "Add_To_Cart"},
    {"event_type": "custom_event", "name": "view", "conditions": [SHOES]},
    {"event_type": "custom_event", "name": "VIEW"},
    {"name": "search"},
    {"event_type": "custom_event", "custom_event_type": "navigation"},
    {"event_type": "custom_event", "custom_event_type": "other"},
    {"event_type": "commerce_event", "product_conditions": [
        SHOES, {"attribute_name": "price", "operator": "greater_or_equal", "value": 3}]},
    {"event_type": "custom_event", "conditions": [{"attribute_name": "tags", "operator": "contains", "value": "shoe"}]},
    {"event_type": "custom_event", "conditions": [{"attribute_name": "price", "operator": "between", "min_value": 3,
                                                   "max_value": 8}]},
    {"event_type": "commerce_event", "conditions": [{"attribute_name": "total_amount", "operator": "greater_than",
                                                     "value": 10}]},
    {"event_type": "commerce_event", "name": "ORDER COMPLETED"},
    {"event_type": "commerce_event", "product_conditions": [{"attribute_name": "color", "operator": "in_list",
                                                             "values": ["blue", "green"]}]},
)
# Sequences' first and following events; in the last two one event can be both (it does not follow itself).
SEQUENCES: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({"event_type": "commerce_event", "name": "add_to_cart"}, {"event_type": "commerce_event", "name": "purchase"}),
    ({"event_type": "custom_event", "name": "view"}, {"name": "search"}),
    ({"event_type": "commerce_event", "name": "purchase"}, {"event_type": "custom_event", "name": "view"}),
    ({"event_type": "commerce_event", "name": "purchase"}, {"event_type": "commerce_event", "name": "purchase"}),
    ({"event_type": "commerce_event"}, {"name": "purchase"}),
)


def calc_criteria(calc: Calc) -> st.SearchStrategy[dict[str, Any]]:
    """Criteria on a calculated attribute. A count's criteria are false on "0" (a profile with no contributing
    event has no value, which reads as absent: the two must not be told apart here, see the module docstring)."""
    kind = calc.definition["calculation_type"]
    if kind == "count":
        options = [{"operator": "greater_than", "value": 0}, {"operator": "greater_or_equal", "value": 2},
                   {"operator": "between", "min_value": 1, "max_value": 2}]
    elif kind in ("sum", "min", "max", "average", "unique_values_count"):
        options = [{"operator": "greater_than", "value": 5}, {"operator": "less_than_or_equal", "value": 10},
                   {"operator": "exists"}]
    elif kind in ("first_occurrence_timestamp", "last_occurrence_timestamp"):
        options = [{"operator": "after", "value": day(30)}, {"operator": "before", "value": day(20)},
                   {"operator": "exists"}]
    elif kind == "unique_list":
        options = [{"operator": "contains", "value": "shoes"}, {"operator": "equals", "value": "hats"},
                   {"operator": "not_exists"}]
    else:
        options = [{"operator": "equals", "value": "shoes"}, {"operator": "starts_with", "value": "h"},
                   {"operator": "not_exists"}, {"operator": "greater_than", "value": 4}]
    return st.sampled_from(options).map(lambda c: {"calculated_attribute": {"name": calc.name, **c}})


@st.composite
def event_criteria(draw: st.DrawFn) -> dict[str, Any]:
    body = dict(draw(st.sampled_from(MATCHERS)))
    recency = draw(st.sampled_from(["none", "within", "between"]))
    if recency == "within":
        body["within"] = draw(st.sampled_from(["90m", "6h", "2d", "7d"]))
    elif recency == "between":
        start = draw(st.integers(0, 40))
        body["between"] = {"from": day(start), "to": day(start + draw(st.integers(0, 10)))}
    frequency = draw(st.sampled_from([None, {"at_least": 2}, {"at_most": 1}, {"exactly": 1}, {"exactly": 0}]))
    if frequency is not None:
        body["frequency"] = frequency
    return {"event": body}


@st.composite
def sequence_criteria(draw: st.DrawFn) -> dict[str, Any]:
    first, then = draw(st.sampled_from(SEQUENCES))
    body: dict[str, Any] = {"first": first, "then_not" if draw(st.booleans()) else "then": then,
                            "gap": draw(st.sampled_from(["1h", "6h", "1d"]))}
    if draw(st.booleans()):
        body["within"] = draw(st.sampled_from(["3d", "12h"]))
    return {"sequence": body}


def audience_nodes(calcs: list[Calc]) -> st.SearchStrategy[dict[str, Any]]:
    leaves = [event_criteria(), sequence_criteria(), *(calc_criteria(c) for c in calcs)]

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.one_of(st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
                         st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
                         inner.map(lambda c: {"not": c}))

    return st.recursive(st.one_of(*leaves), extend, max_leaves=4)


GAPS = (15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, DAY, 2 * DAY + 3 * HOUR, 7 * DAY, 9 * DAY)
DELAYS = (0, 0, 15 * MINUTE, HOUR, 6 * HOUR, DAY, 3 * DAY, 8 * DAY)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    calcs = [Calc(f"ca{i}", draw(calc_definitions())) for i in range(draw(st.integers(1, 4)))]
    audiences = [Audience(f"aud{i}", draw(audience_nodes(calcs)), draw(st.sampled_from([None, 3, 10])))
                 for i in range(draw(st.integers(1, 3)))]
    spans = sorted(lengths(calcs, audiences))
    steps: list[Step] = []
    clock = T0 + draw(st.integers(0, 40)) * 6 * HOUR
    times: list[int] = []  # the event times so far
    for _ in range(draw(st.integers(3, 8))):
        clock = next_clock(draw, clock, times, spans)
        step = Step(clock)
        for _ in range(draw(st.integers(0, 5))):
            timed = draw(st.integers(0, 9)) > 0
            ts = clock - (draw(st.sampled_from(DELAYS)) if timed else 0)
            kind = commerce_events if draw(st.booleans()) else custom_events
            person = draw(st.sampled_from(PEOPLE))
            step.arrivals.append(Sent(person, draw(kind(f"e{len(times)}", ts)), timed, draw(st.booleans())))
            times.append(ts)
        step.pages = draw(st.sampled_from([0, 0, 1, 2]))
        step.backfill = draw(st.booleans())
        steps.append(step)
    for _ in range(draw(st.integers(0, 3))):  # steps with no events: windows and deadlines pass
        clock = next_clock(draw, clock, times, spans)
        steps.append(Step(clock, backfill=draw(st.booleans())))
    # Checks right at (and 1 ms before) a time an event's contribution or criterion ends: where off-by-ones show.
    events = [sent.event for step in steps for sent in step.arrivals]
    if events:
        probes: set[int] = set()
        for _ in range(draw(st.integers(0, 4))):
            event = draw(st.sampled_from(events))
            probe = event.ts + draw(st.sampled_from(edge_spans(calcs, audiences, event))) - draw(st.integers(0, 1))
            if probe > steps[0].clock:
                probes.add(probe)
        steps = sorted([*steps, *(Step(t, backfill=draw(st.booleans())) for t in sorted(probes))],
                       key=lambda s: s.clock)
    steps[-1].backfill = True
    for name in [c.name for c in calcs] + [a.name for a in audiences]:
        steps[draw(st.integers(0, len(steps) - 1))].activate.append(name)
    if draw(st.booleans()):
        at = draw(st.integers(len(steps) // 2, len(steps) - 1))
        survivor, merged = draw(st.permutations(PEOPLE))[:2]
        steps[at].merge = (survivor, merged)
        if at + 1 < len(steps) and draw(st.booleans()):
            steps[draw(st.integers(at + 1, len(steps) - 1))].unmerge = True
    # Small pages: a backfill takes many, so events and merges land between them.
    pages = draw(st.sampled_from([(backfill.EVENTS_PER_PAGE, backfill.PROFILES_PER_PAGE), (2, 1), (3, 2)]))
    return World(calcs, audiences, steps, pages)


def lengths(calcs: list[Calc], audiences: list[Audience]) -> set[int]:
    """Every span after an event at which something can change: windows, withins, gaps (and gap plus within, when
    a first event too late for the sequence could still have been followed), lookbacks."""
    found = {(a.lookback_days or 30) * DAY for a in audiences}
    for c in calcs:
        period = c.definition.get("time_period") or {}
        if period.get("type") == "within":
            found.add(period["within"] * (7 if period.get("within_unit") == "weeks" else 1) * DAY)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, inner in node.items():
                if key in ("within", "gap") and isinstance(inner, str):
                    found.add(oracle.duration_ms(inner))
                if key == "sequence" and "within" in inner:
                    found.add(oracle.duration_ms(inner["gap"]) + oracle.duration_ms(inner["within"]))
                walk(inner)
        elif isinstance(node, list):
            for inner in node:
                walk(inner)

    for a in audiences:
        walk(a.definition)
    return found


def edge_spans(calcs: list[Calc], audiences: list[Audience], event: Event) -> list[int]:
    """The spans after this event at which a value or a criterion it takes part in can change."""
    found = {oracle.window_ms(c.definition) or 0 for c in calcs if oracle.contributions(c.definition, event)}
    found |= {(a.lookback_days or 30) * DAY for a in audiences}

    def walk(node: object) -> None:
        if isinstance(node, list):
            for inner in node:
                walk(inner)
        if not isinstance(node, dict):
            return
        for key, body in node.items():
            if key == "event" and body.get("within") and oracle.event_matches(body, event):
                found.add(oracle.duration_ms(body["within"]))
            elif key == "sequence" and oracle.event_matches(body["first"], event):
                gap = oracle.duration_ms(body["gap"])
                within = oracle.duration_ms(body["within"]) if body.get("within") else None
                found.update(x for x in (gap, within, within and within + gap) if x)
            else:
                walk(body)

    for a in audiences:
        walk(a.definition)
    return sorted(found - {0})


def next_clock(draw: st.DrawFn, clock: int, times: list[int], spans: list[int]) -> int:
    """A later clock time: a step of a usual length, or right at (or 1 ms around) the time something changes
    (an event's time plus a window, a within, a gap or a lookback), where an off-by-one shows."""
    probing: bool = draw(st.booleans())
    if times and probing:
        probe = draw(st.sampled_from(times)) + draw(st.sampled_from(spans)) + draw(st.sampled_from((-1, 0, 0, 1)))
        if probe > clock:
            return probe
    return clock + draw(st.sampled_from(GAPS))


# Running a world through Kaon, checking it against the oracle.

def event_json(sent: Sent) -> dict[str, Any]:
    e = sent.event
    data: dict[str, Any] = {"source_message_id": e.key}
    if sent.timed:
        data["timestamp_unixtime_ms"] = e.ts
    if e.attributes:
        data["custom_attributes"] = dict(e.attributes)
    if e.name is not None:
        data["event_name"] = e.name
    if e.event_type == "custom_event":
        if e.custom_event_type is not None:
            data["custom_event_type"] = e.custom_event_type
    else:
        data["product_action"] = {"action": e.action, **e.action_fields, "products": [dict(p) for p in e.products]}
        if e.currency_code is not None:
            data["currency_code"] = e.currency_code
    return {"event_type": e.event_type, "data": data}


def batches(arrivals: list[Sent]) -> list[dict[str, Any]]:
    """One mParticle batch per arrival, or one for a run of the same person's arrivals that join."""
    out: list[dict[str, Any]] = []
    for n, sent in enumerate(arrivals):
        if n and sent.joins and arrivals[n - 1].person == sent.person:
            out[-1]["events"].append(event_json(sent))
        else:
            out.append({"environment": "production", "user_identities": {"customer_id": sent.person},
                        "events": [event_json(sent)]})
    return out


@dataclass
class Books:
    """The oracle's side: which profile holds each event and each person, and which profiles live."""

    owner: dict[str, str] = field(default_factory=dict)  # event key → profile (named by its first person)
    holds: dict[str, str] = field(default_factory=lambda: {p: p for p in PEOPLE})  # person → profile
    mpid: dict[str, int] = field(default_factory=dict)  # profile → Kaon's mpid
    gone: set[str] = field(default_factory=set)  # merged-away profiles
    open_merge: tuple[int, str, str, set[str]] | None = None  # (merge id, survivor, merged, moved event keys)


def run_world(world: World, root: Path, url: str | None = None) -> None:
    with a_pipeline(root, url=url) as p, page_sizes(*world.pages):
        play(world, p)


@contextmanager
def page_sizes(events: int, profiles: int) -> Iterator[None]:
    """A backfill's page sizes (module settings of kaon.audiences.backfill), restored after."""
    before = backfill.EVENTS_PER_PAGE, backfill.PROFILES_PER_PAGE
    backfill.EVENTS_PER_PAGE, backfill.PROFILES_PER_PAGE = events, profiles
    try:
        yield
    finally:
        backfill.EVENTS_PER_PAGE, backfill.PROFILES_PER_PAGE = before


def play(world: World, p: Pipeline) -> None:
    """Run the world's steps through Kaon, checking it against the oracle after each."""
    conn = p.db.conn()
    ws = p.workspace_id
    ids: dict[str, str] = {}
    for calc in world.calcs:
        ids[calc.name] = service.create_calculated(conn, ws, {"name": calc.name,
                                                              "draft_definition": calc.definition}, "t", T0).id
    for aud in world.audiences:
        ids[aud.name] = service.create_audience(conn, ws, {"name": aud.name, "definition": aud.definition,
                                                           "lookback_days": aud.lookback_days}, "t", T0).id
    books = Books()
    known: dict[str, Sent] = {}
    active: set[str] = set()
    pending = False
    for number, step in enumerate(world.steps):
        for name in step.activate:
            if name.startswith("ca"):
                service.activate_calculated(conn, ws, ids[name], "t", step.clock)
            else:
                service.activate_audience(conn, ws, ids[name], "t", step.clock)
            active.add(name)
            pending = True
        if step.pages:
            run_some(conn, fixed(step.clock), budget_pages=step.pages)
        if step.arrivals:
            p.append(KIND_MPARTICLE_BULK, batches(step.arrivals), received_ms=step.clock)
            p.process(now=step.clock)
            for sent in step.arrivals:
                known[sent.event.key] = sent
                books.owner[sent.event.key] = books.holds[sent.person]
                if sent.person not in books.mpid and books.holds[sent.person] == sent.person:
                    books.mpid[sent.person] = p.holder("customer_id", sent.person)
        if step.merge is not None:
            merge_profiles(p, books, step.merge, step.clock)
        if step.unmerge:
            unmerge_profiles(p, books, step.clock)
        if step.backfill:
            run_backfills(conn, fixed(step.clock))
            pending = False
        with transaction(conn):
            run_due_changes(conn, step.clock)
        if not pending:
            check(p, world, ids, books, known, active, step.clock, number)


def fixed(clock: int) -> Callable[[], int]:
    return lambda: clock


def merge_profiles(p: Pipeline, books: Books, people: tuple[str, str], now: int) -> None:
    survivor, merged = (books.holds[x] for x in people)
    if survivor == merged or survivor not in books.mpid or merged not in books.mpid or books.open_merge:
        return  # both profiles must exist (and be apart) to merge
    conn = p.db.conn()
    with transaction(conn):
        merge_id = merge(conn, p.workspace_id, books.mpid[survivor], books.mpid[merged], reason="test",
                         actor="test", now_ms=now)
    moved = {k for k, owner in books.owner.items() if owner == merged}
    for k in moved:
        books.owner[k] = survivor
    books.holds = {person: survivor if held == merged else held for person, held in books.holds.items()}
    books.gone.add(merged)
    books.open_merge = (merge_id, survivor, merged, moved)


def unmerge_profiles(p: Pipeline, books: Books, now: int) -> None:
    if books.open_merge is None:
        return
    merge_id, _, merged, moved = books.open_merge
    conn = p.db.conn()
    with transaction(conn):
        unmerge(conn, p.workspace_id, merge_id, actor="test", now_ms=now)
    for k in moved:  # events that arrived while merged stay with the survivor
        books.owner[k] = merged
    books.holds[merged] = merged
    books.gone.discard(merged)
    books.open_merge = None


def check(p: Pipeline, world: World, ids: dict[str, str], books: Books, known: dict[str, Sent], active: set[str],
          now: int, number: int) -> None:
    conn = p.db.conn()
    calcs = [c for c in world.calcs if c.name in active]
    wrong: list[str] = []
    expected_members: dict[str, set[int]] = {a.name: set() for a in world.audiences}
    for profile, mpid in sorted(books.mpid.items()):
        shown = current_values(conn, p.workspace_id, mpid, now)
        if profile in books.gone:
            if shown:
                wrong.append(f"merged-away {profile} shows {shown}")
            continue
        history = [known[k].event for k, owner in books.owner.items() if owner == profile]
        values = {c.name: oracle.calculated_value(c.definition, history, now) for c in calcs}
        for c in calcs:
            got = shown.get(c.name, "0" if c.definition["calculation_type"] == "count" else None)
            if got != values[c.name]:
                wrong.append(f"{profile} {c.name}={got!r}, oracle {values[c.name]!r}")
            if c.name in shown and not oracle.ever_contributed(c.definition, history):
                wrong.append(f"{profile} shows {c.name}={shown[c.name]!r} with no contributing event")
        for a in world.audiences:
            if a.name in active and oracle.is_member(a.definition, a.lookback_days, history, values, now):
                expected_members[a.name].add(mpid)
    labels = {m: k for k, m in books.mpid.items()}
    store = MemberStore(conn, p.workspace_id)
    for name, expected in expected_members.items():
        members = dict(store.members(ids[name], -1))
        if set(members) != expected:
            wrong.append(f"{name} members {sorted(labels.get(m, str(m)) for m in members)}, oracle "
                         f"{sorted(labels[m] for m in expected)}")
        # The changes tell the same story: each profile enters and exits in turn, members are those last entered.
        last: dict[int, dict[str, Any]] = {}
        for change in store.changes(ids[name], -1):
            before = last.get(change["mpid"])
            if (before is None or before["action"] == "exit") != (change["action"] == "enter"):
                wrong.append(f"{name}: {labels.get(change['mpid'])} {change['action']} ({change['cause']}) after "
                             f"{before and before['action']}")
            last[change["mpid"]] = change
        entered = {m: c["at_unixtime_ms"] for m, c in last.items() if c["action"] == "enter"}
        if entered != members:
            wrong.append(f"{name}: members {members} but changes say {entered}")
    assert not wrong, f"step {number} at T0+{(now - T0) / DAY:.3f}d ({oracle.iso(now)}):\n" + "\n".join(wrong)


def describe(world: World) -> str:
    """The world in lines a person can read (times as days after T0)."""
    def at(ms: int) -> str:
        return f"T0+{(ms - T0) / DAY:g}d"
    lines = [f"calc {c.name}: {c.definition}" for c in world.calcs]
    lines += [f"audience {a.name} (lookback {a.lookback_days}): {a.definition}" for a in world.audiences]
    for n, step in enumerate(world.steps):
        lines.append(f"step {n} at {at(step.clock)}: activate {step.activate} pages={step.pages} "
                     f"backfill={step.backfill} merge={step.merge} unmerge={step.unmerge}")
        for s in step.arrivals:
            e = s.event
            what = e.name if e.event_type == "custom_event" else e.action
            lines.append(f"  {s.person} {e.key} {e.event_type}:{what} at {at(e.ts)}{'' if s.timed else ' (untimed)'}"
                         f" type={e.custom_event_type} attrs={dict(e.attributes)} fields={dict(e.action_fields)}"
                         f" currency={e.currency_code} products={list(e.products)}")
    return "\n".join(lines)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_kaon_agrees_with_the_oracle_at_every_step(world: World) -> None:
    note(describe(world))
    with tempfile.TemporaryDirectory(prefix="kaon-oracle-") as tmp:
        run_world(world, Path(tmp))


# One world written out, on both dialects.

def purchase(key: str, ts: int, amount: float, *products: dict[str, Any]) -> Event:
    return Event(key=key, ts=ts, event_type="commerce_event", action="purchase",
                 action_fields={"total_amount": amount}, currency_code="EUR", products=list(products))


def cart(key: str, ts: int) -> Event:
    return Event(key=key, ts=ts, event_type="commerce_event", action="add_to_cart")


def view(key: str, ts: int, category: str) -> Event:
    return Event(key=key, ts=ts, event_type="custom_event", name="view", attributes={"Category": category})


def a_fixed_world() -> World:
    start = T0 + 10 * DAY
    calcs = [
        Calc("ca_spend_7d", {"data_point": {"event_type": "commerce_event", "event_name": "purchase",
                                            "attribute_name": "total_amount"}, "calculation_type": "sum",
                             "time_period": {"type": "within", "within": 7, "within_unit": "days"}}),
        Calc("ca_items", {"data_point": {"event_type": "commerce_event", "attribute_category": "product_attribute",
                                         "use_product_quantity": True}, "calculation_type": "count"}),
        Calc("ca_favourite", {"data_point": {"event_type": "custom_event", "event_name": "view",
                                             "attribute_name": "category"}, "calculation_type": "most_frequent"}),
        Calc("ca_last_buy", {"data_point": {"event_type": "commerce_event", "event_name": "purchase"},
                             "calculation_type": "last_occurrence_timestamp",
                             "time_period": {"type": "since", "date": day(11)}}),
    ]
    audiences = [
        Audience("aud_abandoners", {"sequence": {"first": {"event_type": "commerce_event", "name": "add_to_cart"},
                                                 "then_not": {"event_type": "commerce_event", "name": "purchase"},
                                                 "gap": "1h", "within": "3d"}}, None),
        Audience("aud_spenders", {"all": [{"calculated_attribute": {"name": "ca_spend_7d", "operator": "greater_than",
                                                                    "value": 15}},
                                          {"not": {"event": {"name": "view", "within": "2d"}}}]}, 10),
        Audience("aud_shoes", {"event": {"event_type": "custom_event", "name": "view", "conditions": [SHOES],
                                         "frequency": {"at_least": 2}}}, 3),
    ]
    shoe = {"id": "p1", "category": "shoes", "price": 10, "quantity": 2}
    return World(calcs, audiences, [
        Step(start, [Sent("c0", purchase("e1", start - 2 * DAY, 10, shoe), True),
                     Sent("c0", view("e2", start - DAY, "shoes"), True),
                     Sent("c1", cart("e3", start), True)], activate=["ca_spend_7d", "aud_spenders"]),
        # Activated after that history: events of this step arrive in the middle of the backfills.
        Step(start + 30 * MINUTE, [Sent("c0", purchase("e4", start, 12.5), True),
                                   Sent("c1", view("e5", start - 3 * DAY, "Shoes"), True),
                                   Sent("c1", view("e6", start + 30 * MINUTE, "shoes"), False)],
             activate=["ca_items", "ca_favourite", "ca_last_buy", "aud_abandoners", "aud_shoes"], pages=3,
             backfill=True),
        Step(start + 2 * HOUR, [Sent("c2", cart("e7", start + HOUR), True),
                                Sent("c2", purchase("e8", start + 90 * MINUTE, 30), True)], backfill=True),
        Step(start + 2 * DAY + HOUR, merge=("c0", "c2"), backfill=True),
        Step(start + 5 * DAY, [Sent("c2", view("e9", start + 4 * DAY, "hats"), True)], backfill=True),
        Step(start + 6 * DAY, unmerge=True, backfill=True),
        Step(start + 9 * DAY, backfill=True),
        Step(start + 40 * DAY, backfill=True),
    ], pages=(2, 1))


@pytest.fixture
def store_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "world"
    root.mkdir()
    yield root


def test_a_fixed_world_agrees_with_the_oracle_on_both_dialects(store_root: Path, database_url: str) -> None:
    run_world(a_fixed_world(), store_root, database_url)


# Engine defects the oracle's harness found (fixed in engine.py and schedule.py): deactivated memberships kept in
# profiles' state, late scheduler runs stamping every change with the earliest due time, and a window's value shown
# after a live event that had already rolled off (a backfill skips it).

def abandoner_world(p: Pipeline, gaps: tuple[str, ...]) -> list[str]:
    conn = p.db.conn()
    ids = []
    for n, gap in enumerate(gaps):
        row = service.create_audience(conn, p.workspace_id, {"name": f"abandoned {n}", "definition": {"sequence": {
            "first": {"name": "add_to_cart"}, "then_not": {"name": "purchase"}, "gap": gap}}}, "t", NOW)
        service.activate_audience(conn, p.workspace_id, row.id, "t", NOW)
        ids.append(row.id)
    run_backfills(conn, fixed(NOW))
    p.bulk(*batches([Sent("c0", Event("e1", NOW, "commerce_event", action="add_to_cart"), True)]))
    p.process(now=NOW)
    return ids


def test_a_reactivated_audience_has_its_members_again(tmp_path: Path) -> None:
    with a_pipeline(tmp_path) as p:
        conn = p.db.conn()
        (audience,) = abandoner_world(p, ("1h",))
        with transaction(conn):
            run_due_changes(conn, NOW + 2 * HOUR)
        mpid = p.holder("customer_id", "c0")
        assert [m for m, _ in MemberStore(conn, p.workspace_id).members(audience, -1)] == [mpid]
        service.deactivate_audience(conn, p.workspace_id, audience, NOW + 3 * HOUR)
        assert MemberStore(conn, p.workspace_id).members(audience, -1) == []
        service.activate_audience(conn, p.workspace_id, audience, "t", NOW + 4 * HOUR)
        run_backfills(conn, fixed(NOW + 4 * HOUR))
        # The oracle (and the docs: activation evaluates every live profile) say the profile is a member again.
        assert [m for m, _ in MemberStore(conn, p.workspace_id).members(audience, -1)] == [mpid]


def test_the_scheduler_records_each_change_at_the_time_it_became_true(tmp_path: Path) -> None:
    with a_pipeline(tmp_path) as p:
        conn = p.db.conn()
        one_hour, two_hours = abandoner_world(p, ("1h", "2h"))
        with transaction(conn):
            run_due_changes(conn, NOW + 3 * HOUR)  # the scheduler ran late (a restart, a backlog)
        times = {c["audience_id"]: c["at_unixtime_ms"] for c in MemberStore(conn, p.workspace_id).changes(None, -1)}
        assert times == {one_hour: NOW + HOUR, two_hours: NOW + 2 * HOUR}


def test_two_profiles_with_the_same_history_show_the_same_values(tmp_path: Path) -> None:
    world = World([Calc("ca_buys_7d", {"data_point": {"event_type": "commerce_event", "event_name": "purchase"},
                                       "calculation_type": "count",
                                       "time_period": {"type": "within", "within": 7, "within_unit": "days"}})],
                  [], [Step(NOW - 10 * DAY, [Sent("c0", purchase("e1", NOW - 10 * DAY, 5), True)]),
                       Step(NOW, [Sent("c1", purchase("e2", NOW - 10 * DAY, 5), True)], activate=["ca_buys_7d"],
                            backfill=True)])
    with a_pipeline(tmp_path) as p:
        play(world, p)
        shown = [current_values(p.db.conn(), p.workspace_id, p.holder("customer_id", c), NOW) for c in ("c0", "c1")]
        assert shown[0] == shown[1]
