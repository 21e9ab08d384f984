"""Property: Kaon's calculated values and audience memberships equal the reference evaluator's (oracle.py) at
every clock time, whatever the arrival order.

Hypothesis draws a world: a few people, custom and commerce events over ~40 days (sent at a clock time, some late,
some without a timestamp), a few calculated attribute and audience definitions activated at some step (some after
history exists, with events processed before their backfill runs), and maybe a merge of two people's profiles
(and its undoing). The world runs through the real process stage on a fresh store with a fixed clock; at each
step, once no backfill is pending and the scheduler has run at that time, every live profile's values and every
audience's members must be what the oracle computes from the profile's full history.
"""

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences import oracle
from audiences.oracle import DAY, HOUR, MINUTE, Event
from kaon.audiences import service
from kaon.audiences.backfill import run_backfills
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
    backfill: bool = False  # run the pending backfills after the step's events
    merge: tuple[str, str] | None = None  # (survivor's person, merged person)
    unmerge: bool = False  # undo the merge


@dataclass
class World:
    calcs: list[Calc]
    audiences: list[Audience]
    steps: list[Step]


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
    return Event(key=key, ts=ts, event_type="commerce_event", action=draw(st.sampled_from(["add_to_cart", "purchase"])),
                 action_fields=fields, currency_code=draw(st.sampled_from([None, "EUR", "usd"])),
                 attributes=attributes, products=draw(st.lists(products(), max_size=2)))


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
)
CALC_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"type": "string", "operator": "equals", "attribute_name": "category", "value": "shoes"},
    {"operator": "in_list", "attribute_name": "Category", "values": ["hats", "bags"]},
    {"operator": "equals", "attribute_name": "currency_code", "value": "EUR"},
    {"operator": "greater_than", "attribute_name": "price", "value": 3},
    {"operator": "not_exists", "attribute_name": "category"},
    {"operator": "contains", "attribute_name": "tags", "value": "shoe"},
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
)
# Sequences' first and following events never match the same event.
SEQUENCES: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({"event_type": "commerce_event", "name": "add_to_cart"}, {"event_type": "commerce_event", "name": "purchase"}),
    ({"event_type": "custom_event", "name": "view"}, {"name": "search"}),
    ({"event_type": "commerce_event", "name": "purchase"}, {"event_type": "custom_event", "name": "view"}),
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
    leaf = st.one_of(*leaves)
    return st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
        inner.map(lambda c: {"not": c})), max_leaves=4)


GAPS = (15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, DAY, 2 * DAY + 3 * HOUR, 7 * DAY, 9 * DAY)
DELAYS = (0, 0, 15 * MINUTE, HOUR, 6 * HOUR, DAY, 3 * DAY, 8 * DAY)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    calcs = [Calc(f"ca{i}", draw(calc_definitions())) for i in range(draw(st.integers(1, 4)))]
    audiences = [Audience(f"aud{i}", draw(audience_nodes(calcs)), draw(st.sampled_from([None, 3, 10])))
                 for i in range(draw(st.integers(1, 3)))]
    steps: list[Step] = []
    clock = T0 + draw(st.integers(0, 40)) * 6 * HOUR
    serial = 0
    for _ in range(draw(st.integers(3, 7))):
        clock += draw(st.sampled_from(GAPS))
        step = Step(clock)
        for _ in range(draw(st.integers(0, 5))):
            serial += 1
            timed = draw(st.integers(0, 9)) > 0
            ts = clock - (draw(st.sampled_from(DELAYS)) if timed else 0)
            kind = commerce_events if draw(st.booleans()) else custom_events
            step.arrivals.append(Sent(draw(st.sampled_from(PEOPLE)), draw(kind(f"e{serial}", ts)), timed))
        step.backfill = draw(st.booleans())
        steps.append(step)
    for _ in range(draw(st.integers(0, 2))):  # steps with no events: windows and deadlines pass
        clock += draw(st.sampled_from((HOUR, DAY, 8 * DAY, 31 * DAY)))
        steps.append(Step(clock, backfill=draw(st.booleans())))
    steps[-1].backfill = True
    for name in [c.name for c in calcs] + [a.name for a in audiences]:
        steps[draw(st.integers(0, len(steps) - 1))].activate.append(name)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(steps) - 1))
        survivor, merged = draw(st.permutations(PEOPLE))[:2]
        steps[at].merge = (survivor, merged)
        if at + 1 < len(steps) and draw(st.booleans()):
            steps[draw(st.integers(at + 1, len(steps) - 1))].unmerge = True
    return World(calcs, audiences, steps)


# Running a world through Kaon, checking it against the oracle.

def batch(sent: Sent) -> dict[str, Any]:
    e = sent.event
    data: dict[str, Any] = {"source_message_id": e.key}
    if sent.timed:
        data["timestamp_unixtime_ms"] = e.ts
    if e.attributes:
        data["custom_attributes"] = dict(e.attributes)
    if e.event_type == "custom_event":
        data["event_name"] = e.name
        if e.custom_event_type is not None:
            data["custom_event_type"] = e.custom_event_type
    else:
        data["product_action"] = {"action": e.action, **e.action_fields, "products": [dict(p) for p in e.products]}
        if e.currency_code is not None:
            data["currency_code"] = e.currency_code
    return {"environment": "production", "user_identities": {"customer_id": sent.person},
            "events": [{"event_type": e.event_type, "data": data}]}


@dataclass
class Books:
    """The oracle's side: which profile holds each event and each person, and which profiles live."""

    owner: dict[str, str] = field(default_factory=dict)  # event key → profile (named by its first person)
    holds: dict[str, str] = field(default_factory=lambda: {p: p for p in PEOPLE})  # person → profile
    mpid: dict[str, int] = field(default_factory=dict)  # profile → Kaon's mpid
    gone: set[str] = field(default_factory=set)  # merged-away profiles
    open_merge: tuple[int, str, str, set[str]] | None = None  # (merge id, survivor, merged, moved event keys)


def run_world(world: World, root: Path, url: str | None = None) -> None:
    with a_pipeline(root, url=url) as p:
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
            if step.arrivals:
                p.append(KIND_MPARTICLE_BULK, [batch(s) for s in step.arrivals], received_ms=step.clock)
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
    merge_id, survivor, merged, moved = books.open_merge
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
    expected_members: dict[str, set[int]] = {a.name: set() for a in world.audiences if a.name in active}
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
    for name, expected in expected_members.items():
        got = {m for m, _ in MemberStore(conn, p.workspace_id).members(ids[name], -1)}
        if got != expected:
            labels = {m: k for k, m in books.mpid.items()}
            wrong.append(f"{name} members {sorted(labels.get(m, str(m)) for m in got)}, oracle "
                         f"{sorted(labels[m] for m in expected)}")
    assert not wrong, f"step {number} at T0+{(now - T0) / DAY:.3f}d ({oracle.iso(now)}):\n" + "\n".join(wrong)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_kaon_agrees_with_the_oracle_at_every_step(world: World) -> None:
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
        # Activated after that history: events of this step are processed before the backfill runs.
        Step(start + 30 * MINUTE, [Sent("c0", purchase("e4", start, 12.5), True),
                                   Sent("c1", view("e5", start - 3 * DAY, "Shoes"), True),
                                   Sent("c1", view("e6", start + 30 * MINUTE, "shoes"), False)],
             activate=["ca_items", "ca_favourite", "ca_last_buy", "aud_abandoners", "aud_shoes"], backfill=True),
        Step(start + 2 * HOUR, [Sent("c2", cart("e7", start + HOUR), True),
                                Sent("c2", purchase("e8", start + 90 * MINUTE, 30), True)], backfill=True),
        Step(start + 2 * DAY + HOUR, merge=("c0", "c2"), backfill=True),
        Step(start + 5 * DAY, [Sent("c2", view("e9", start + 4 * DAY, "hats"), True)], backfill=True),
        Step(start + 6 * DAY, unmerge=True, backfill=True),
        Step(start + 9 * DAY, backfill=True),
        Step(start + 40 * DAY, backfill=True),
    ])


@pytest.fixture
def store_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "world"
    root.mkdir()
    yield root


def test_a_fixed_world_agrees_with_the_oracle_on_both_dialects(store_root: Path, database_url: str) -> None:
    run_world(a_fixed_world(), store_root, database_url)
