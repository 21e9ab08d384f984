"""Audiences and calculated attributes: their cost to the process stage, ingest-to-membership latency, backfill speed
and state size, over a synthetic world.

Run: `.venv/bin/python bench/audiences.py [--users 20000] [--events 1000000] [--rounds 3] [--latency-seconds 30]
[--latency-rate 100] [--profile FILE]`.

The world: `--users` people (customer id, most with an email; plan, country and age attributes; GDPR marketing
consent for most Europeans, a CCPA opt-out for some Americans; iOS, Android or web), `--events` events in mParticle
batches of 1-19 events, one batch per session, sessions spread over the 30 days before the run with a heavy tail of
active users. A session starts with `session_start`, then screen views (`product` screens carry a category), custom
events (search, share, video_play, ... with attributes) and commerce (view_detail, add_to_cart, purchase with a
total amount and 1-3 products). Batches are written in time order to the SQLite ingest log of a `kaon init` data
directory, before anything is measured.

1. **Process stage** (the throughput ratio): the real `ProcessStage` with `default_steps` and `default_chores` drains
   the whole log into a fresh copy of that directory, in a subprocess per run, once with no definitions and once with
   20 active audiences and 10 active calculated attributes (activated before the first event, so no backfill runs),
   alternating per round. Ratio = with / without events per second (median over rounds). The runs with definitions
   also time the audiences step, so its share of the stage's time is known within one run (immune to the machine's
   drift between runs). `--profile FILE` writes cProfiles of one more run with definitions (FILE) and of the two
   backfills on a copy of the store (FILE.backfill), and prints where the time goes.
2. **State**: `profile_segments` rows and bytes of state JSON per profile (`StateStore.sizes()`), and each run's
   peak RSS.
3. **Latency**: `kaon serve` on the directory of the last run with definitions (1M events stored; the processed
   log entries truncated first, as a server that had done the catch-up would have), sent
   `--latency-rate` batches per second for `--latency-seconds` over keep-alive HTTP (`POST /v2/events`), each batch
   a new user's session ending in a purchase, which puts the user in the "Recent purchasers" audience. Per batch:
   from the wall-clock time just before the request is sent to (a) its 202, (b) the `recorded_ms` of the
   `audience_changes` enter row (the process stage's clock at the start of the slice that made the change) and
   (c) the moment a reader polling `audience_changes` every 5 ms sees the row (committed and readable: what an
   audience output would see).
4. **Backfill**: on the same store (server stopped), a new calculated attribute, then a new audience, each activated
   over the stored history and `run_backfills` timed: events read per second.

Exits 1 if a run did not store every event or recorded no membership change, a latency probe never entered its
audience, or a backfill did not read every event it counted. Targets not met are reported, not failed. SQLite
only (bench/process_stage.py has no PostgreSQL mode to follow).
"""

import argparse
import base64
import cProfile
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from ingest import Server, free_port, kaon_init, machine, run_child, server_input_of
from kaon.audiences import service
from kaon.audiences.backfill import run_backfills
from kaon.audiences.store import DefinitionStore, MemberStore, StateStore
from kaon.clock import now_ms
from kaon.log.base import KIND_MPARTICLE_BATCH, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.audiences import UpdateAudiences
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.pipeline.work import Slice
from kaon.pipeline.worker import tune_gc
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore

BENCH = Path(__file__).resolve()
DAY = 86_400_000
HOUR = 3_600_000
DEDUP_WINDOW_MS = DAY
ACTOR = "bench"
PROBE_AUDIENCE = "Recent purchasers"

# Targets from the issue.
RATIO_TARGET = 0.7
P99_TARGET_S = 2.0
BACKFILL_TARGET = 50_000

COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "ES", "CA", "BR", "JP")
EUROPE = ("GB", "DE", "FR", "ES")
PLANS = ("free", "free", "free", "pro", "pro", "enterprise")
PLATFORMS = ("iOS", "Android", "web")
CATEGORIES = ("shoes", "shirts", "electronics", "books", "toys", "garden", "beauty", "sports")
SCREENS = ("home", "product", "product", "search_results", "cart", "account", "category", "checkout")
CUSTOM = (("search", "search"), ("share", "social"), ("video_play", "media"), ("add_to_wishlist", "user_preference"),
          ("rate_product", "user_preference"), ("newsletter_signup", "other"), ("level_up", "other"),
          ("promo_click", "navigation"), ("app_review", "other"), ("filter_applied", "navigation"))


# The world -------------------------------------------------------------------------------------------------------


class Person:
    def __init__(self, rng: random.Random, n: int) -> None:
        self.customer_id = f"cust-{n}"
        self.email = f"user{n}@{rng.choice(['example.com', 'mail.test', 'corp.test'])}" if rng.random() < 0.8 else None
        self.country = rng.choice(COUNTRIES)
        self.plan = rng.choice(PLANS)
        self.age = rng.randrange(18, 80)
        self.platform = rng.choice(PLATFORMS)
        self.marketing = self.country in EUROPE and rng.random() < 0.6
        self.ccpa_out = self.country == "US" and rng.random() < 0.15
        self.favourite = rng.choice(CATEGORIES)
        self.weight = rng.paretovariate(1.3)  # a heavy tail of very active people
        self.batches = 0


def product(rng: random.Random, person: Person) -> dict[str, Any]:
    category = person.favourite if rng.random() < 0.5 else rng.choice(CATEGORIES)
    price = round(rng.uniform(5, 400 if category == "electronics" else 120), 2)
    return {"id": f"sku-{category}-{rng.randrange(200)}", "name": f"{category} item", "category": category,
            "brand": rng.choice(["acme", "globex", "initech", "umbrella"]), "price": price,
            "quantity": rng.choice([1, 1, 1, 2, 3])}


def an_event(rng: random.Random, person: Person, ts: int, message: str) -> dict[str, Any]:
    common: dict[str, Any] = {"timestamp_unixtime_ms": ts, "source_message_id": message}
    roll = rng.random()
    if roll < 0.45:
        screen = rng.choice(SCREENS)
        attrs: dict[str, Any] = {"tab": rng.choice("abc")}
        if screen in ("product", "category"):
            attrs["category"] = person.favourite if rng.random() < 0.5 else rng.choice(CATEGORIES)
        return {"event_type": "screen_view", "data": {**common, "screen_name": screen, "custom_attributes": attrs}}
    if roll < 0.80:
        name, kind = CUSTOM[min(int(rng.expovariate(0.35)), len(CUSTOM) - 1)]
        return {"event_type": "custom_event", "data": {
            **common, "event_name": name, "custom_event_type": kind,
            "custom_attributes": {"query": f"q{rng.randrange(500)}", "position": rng.randrange(1, 20),
                                  "category": rng.choice(CATEGORIES), "premium": rng.random() < 0.2}}}
    return commerce_event(rng, person, "view_detail" if roll < 0.86 else "add_to_cart" if roll < 0.96 else "purchase",
                          common)


def commerce_event(rng: random.Random, person: Person, action: str, common: dict[str, Any]) -> dict[str, Any]:
    products = [product(rng, person) for _ in range(rng.choice([1, 1, 2, 3]))]
    total = round(sum(p["price"] * p["quantity"] for p in products), 2)
    body: dict[str, Any] = {"action": action, "products": products, "total_amount": total}
    if action == "purchase":
        body.update(transaction_id=common["source_message_id"], tax_amount=round(total * 0.08, 2))
    return {"event_type": "commerce_event", "data": {**common, "currency_code": "USD", "product_action": body,
                                                     "custom_attributes": {"coupon": rng.choice(["", "SPRING"])}}}


def a_batch(rng: random.Random, person: Person, start: int, size: int, tag: str) -> dict[str, Any]:
    """One session of `size` events from `start`: session_start, then the mix (each a few seconds to a minute on)."""
    events: list[dict[str, Any]] = [{"event_type": "session_start", "data": {
        "timestamp_unixtime_ms": start, "source_message_id": f"{tag}-0", "session_uuid": tag}}]
    ts = start
    for i in range(1, size):
        ts += rng.randrange(5_000, 90_000)
        events.append(an_event(rng, person, ts, f"{tag}-{i}"))
    batch: dict[str, Any] = {
        "environment": "production",
        "user_identities": {"customer_id": person.customer_id, **({"email": person.email} if person.email else {})},
        "device_info": {"platform": person.platform, "device_country": person.country},
        "application_info": {"application_version": rng.choice(["3.1.0", "3.2.0", "3.2.1"])},
        "events": events,
    }
    if person.batches == 0 or rng.random() < 0.1:  # attributes with the first batch, then now and then
        if person.batches and rng.random() < 0.3:
            person.plan = rng.choice(PLANS)
        batch["user_attributes"] = {"plan": person.plan, "country": person.country, "age": person.age}
    if person.batches == 0 and (person.marketing or person.ccpa_out):
        consent: dict[str, Any] = {}
        if person.marketing:
            consent["gdpr"] = {"marketing": {"consented": True, "timestamp_unixtime_ms": start,
                                             "document": "privacy-v2"}}
        if person.ccpa_out:
            consent["ccpa"] = {"data_sale_opt_out": {"consented": True, "timestamp_unixtime_ms": start}}
        batch["consent_state"] = consent
    person.batches += 1
    return batch


def write_world(directory: Path, users: int, events: int, seed: int) -> dict[str, Any]:
    """`kaon init` in `directory`, then the world's batches in time order in its ingest log. Its facts (JSON)."""
    created = kaon_init(directory)
    workspace_id, input_id = created["workspace_id"], server_input_of(created)["id"]
    t0 = now_ms()
    rng = random.Random(seed)
    people = [Person(rng, n) for n in range(users)]
    sizes: list[int] = []
    while sum(sizes) < events:
        sizes.append(min(rng.randrange(1, 20), events - sum(sizes)))
    # Every person has at least one session; the rest go by activity weight.
    owners = list(range(min(users, len(sizes))))
    owners += rng.choices(range(users), weights=[p.weight for p in people], k=len(sizes) - len(owners))
    rng.shuffle(owners)
    starts = sorted(t0 - 30 * DAY + rng.randrange(30 * DAY - HOUR) for _ in sizes)
    writer = SqliteLogWriter(directory / "log", "0")
    entries: list[LogEntry] = []
    kinds: dict[str, int] = {}
    for k, (owner, start, size) in enumerate(zip(owners, starts, sizes, strict=True)):
        batch = a_batch(rng, people[owner], start, size, f"s{k}")
        for event in batch["events"]:
            kind = event["event_type"]
            if kind == "commerce_event":
                kind = event["data"]["product_action"]["action"]
            kinds[kind] = kinds.get(kind, 0) + 1
        entries.append(LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=workspace_id, input_id=input_id,
                                received_ms=start + 60_000, ip="10.0.0.1", body=json.dumps(batch).encode()))
        if len(entries) == 500:
            writer.append(entries)
            entries = []
    if entries:
        writer.append(entries)
    writer.close()
    facts = {"created": created, "t0": t0, "users": users, "events": sum(sizes), "batches": len(sizes),
             "kinds": kinds, "active_users": len(set(owners))}
    (directory / "world.json").write_text(json.dumps(facts))
    return facts


# The definitions --------------------------------------------------------------------------------------------------


def within(days: int) -> dict[str, Any]:
    return {"type": "within", "within": days, "within_unit": "days"}


PURCHASE = {"event_type": "commerce_event", "event_name": "purchase"}
CALCULATED: list[tuple[str, dict[str, Any]]] = [
    ("lifetime_value", {"data_point": {**PURCHASE, "attribute_name": "total_amount"}, "calculation_type": "sum"}),
    ("purchases_7d", {"data_point": PURCHASE, "calculation_type": "count", "time_period": within(7)}),
    ("purchases_30d", {"data_point": PURCHASE, "calculation_type": "count", "time_period": within(30)}),
    ("average_order", {"data_point": {**PURCHASE, "attribute_name": "total_amount"}, "calculation_type": "average"}),
    ("largest_order_30d", {"data_point": {**PURCHASE, "attribute_name": "total_amount"}, "calculation_type": "max",
                           "time_period": within(30)}),
    ("smallest_order", {"data_point": {**PURCHASE, "attribute_name": "total_amount"}, "calculation_type": "min"}),
    ("favourite_category", {"data_point": {"event_type": "screen_view", "event_name": "product",
                                           "attribute_name": "category"}, "calculation_type": "most_frequent",
                            "time_period": within(30)}),
    ("categories_bought", {"data_point": {**PURCHASE, "attribute_name": "category",
                                          "attribute_category": "product_attribute"},
                           "calculation_type": "unique_list"}),
    ("last_purchase_at", {"data_point": PURCHASE, "calculation_type": "last_occurrence_timestamp"}),
    ("sessions_7d", {"data_point": {"event_type": "session_start"}, "calculation_type": "count",
                     "time_period": within(7)}),
]


def day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def commerce(name: str, **more: Any) -> dict[str, Any]:
    return {"event": {"event_type": "commerce_event", "name": name, **more}}


def audiences(t0: int) -> list[tuple[str, dict[str, Any]]]:
    """20 audiences; `{"audience": "NAME"}` stands for the id of an audience listed before it."""
    return [
        (PROBE_AUDIENCE, commerce("purchase", within="7d")),
        ("Cart abandoners", {"sequence": {"first": {"event_type": "commerce_event", "name": "add_to_cart"},
                                          "then_not": {"event_type": "commerce_event", "name": "purchase"},
                                          "gap": "1h", "within": "24h"}}),
        ("Shoe lovers", {"all": [
            {"event": {"event_type": "screen_view", "name": "product", "within": "7d", "frequency": {"at_least": 3},
                       "conditions": [{"attribute_name": "category", "operator": "equals", "value": "shoes"}]}},
            {"calculated_attribute": {"name": "lifetime_value", "operator": "greater_than", "value": 100}},
            {"consent": {"regulation": "gdpr", "purpose": "marketing", "consented": True}},
            {"not": {"identity": {"identity_type": "email", "operator": "ends_with", "value": "@example.com"}}}]}),
        ("Frequent searchers", {"event": {"event_type": "custom_event", "name": "search", "within": "7d",
                                          "frequency": {"at_least": 5}}}),
        ("Mid-month sale buyers", commerce("purchase", between={"from": day(t0 - 20 * DAY),
                                                                "to": day(t0 - 10 * DAY)})),
        ("Lapsed buyers", {"all": [commerce("purchase"), {"not": commerce("purchase", within="7d")}]}),
        ("Big spenders", {"calculated_attribute": {"name": "lifetime_value", "operator": "greater_than",
                                                   "value": 500}}),
        ("Pro plan", {"user_attribute": {"name": "plan", "operator": "in_list", "values": ["pro", "enterprise"]}}),
        ("EU marketing opt-in", {"all": [
            {"consent": {"regulation": "gdpr", "purpose": "marketing", "consented": True}},
            {"user_attribute": {"name": "country", "operator": "in_list", "values": ["DE", "FR", "ES", "GB"]}}]}),
        ("CCPA opted out", {"consent": {"regulation": "ccpa", "opted_out": True}}),
        ("Engaged", {"any": [
            {"event": {"event_type": "session_start", "within": "24h", "frequency": {"at_least": 2}}},
            {"event": {"event_type": "custom_event", "name": "video_play", "within": "3d",
                       "frequency": {"at_least": 3}}}]}),
        ("Browsed, no cart", {"sequence": {"first": {"event_type": "screen_view", "name": "product"},
                                           "then_not": {"event_type": "commerce_event", "name": "add_to_cart"},
                                           "gap": "30m", "within": "7d"}}),
        ("Cart then purchase", {"sequence": {"first": {"event_type": "commerce_event", "name": "add_to_cart"},
                                             "then": {"event_type": "commerce_event", "name": "purchase"},
                                             "gap": "1d"}}),
        ("Electronics buyers", commerce("purchase", product_conditions=[
            {"attribute_name": "category", "operator": "equals", "value": "electronics"},
            {"attribute_name": "price", "operator": "greater_than", "value": 200}])),
        ("Exactly one purchase", commerce("purchase", frequency={"exactly": 1})),
        ("Quiet this week", {"all": [{"event": {"event_type": "session_start"}},
                                     {"event": {"event_type": "session_start", "within": "7d",
                                                "frequency": {"at_most": 1}}}]}),
        ("Shoes favourite", {"calculated_attribute": {"name": "favourite_category", "operator": "equals",
                                                      "value": "shoes"}}),
        ("Repeat buyers 30d", {"calculated_attribute": {"name": "purchases_30d", "operator": "greater_or_equal",
                                                        "value": 3}}),
        ("Recent pro purchasers on iOS", {"all": [{"audience": PROBE_AUDIENCE}, {"audience": "Pro plan"},
                                                  {"device": {"field": "platform", "operator": "equals",
                                                              "value": "iOS"}}]}),
        ("Premium searchers outside the US", {"all": [
            {"event": {"event_type": "custom_event", "name": "search", "within": "30d",
                       "conditions": [{"attribute_name": "premium", "operator": "is_true"}]}},
            {"not": {"user_attribute": {"name": "country", "operator": "equals", "value": "US"}}},
            {"audience": {"name": "CCPA opted out", "member": False}}]}),
    ]


def resolve(node: Any, ids: dict[str, str]) -> Any:
    """The definition with audiences named (`{"audience": NAME}`, `{"audience": {"name", "member"}}`) by id."""
    if isinstance(node, dict):
        named = node.get("audience")
        if isinstance(named, str):
            return {"audience": {"id": ids[named], "member": True}}
        if isinstance(named, dict) and "name" in named:
            return {"audience": {"id": ids[named["name"]], "member": named.get("member", True)}}
        return {k: resolve(v, ids) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, ids) for v in node]
    return node


def install(db: Database, workspace_id: str, t0: int) -> dict[str, str]:
    """Create and activate the 10 calculated attributes and 20 audiences; run their (empty) backfills. Name → id."""
    conn, now = db.conn(), now_ms()
    ids: dict[str, str] = {}
    for name, definition in CALCULATED:
        row = service.create_calculated(conn, workspace_id, {"name": name, "draft_definition": definition}, ACTOR, now)
        service.activate_calculated(conn, workspace_id, row.id, ACTOR, now)
        ids[name] = row.id
    for name, definition in audiences(t0):
        body = {"name": name, "definition": resolve(definition, ids)}
        row = service.create_audience(conn, workspace_id, body, ACTOR, now)
        service.activate_audience(conn, workspace_id, row.id, ACTOR, now)
        ids[name] = row.id
    run_backfills(conn)
    assert all(r.status == "active" for r in DefinitionStore(conn, workspace_id).live())
    return ids


# One process-stage run (in a subprocess) ----------------------------------------------------------------------------


class TimedAudiences(UpdateAudiences):
    """The audiences step, timing itself (its share of the stage's time, measured within the run)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def run(self, work: Slice) -> None:
        started = time.perf_counter()
        super().run(work)
        self.seconds += time.perf_counter() - started


def one_run(directory: Path, with_definitions: bool, profile: Path | None) -> dict[str, Any]:
    world = json.loads((directory / "world.json").read_text())
    workspace_id = world["created"]["workspace_id"]
    db = Database(DatabaseUrl.parse(f"sqlite:///{directory / 'kaon.db'}"), data_dir=directory)
    if with_definitions:
        install(db, workspace_id, world["t0"])
    timed = TimedAudiences()
    steps = [timed if isinstance(s, UpdateAudiences) else s for s in default_steps(dedup_window_ms=DEDUP_WINDOW_MS)]
    reader = SqliteLogReader(directory / "log")
    stage = ProcessStage(db, reader, steps, chores=default_chores(dedup_window_ms=DEDUP_WINDOW_MS))
    tune_gc()  # as the process stage's own process does
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    while stage.run_once():
        pass
    if profiler:
        profiler.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler and profile:
        profiler.dump_stats(str(profile))
    reader.close()
    conn = db.conn()
    sent = conn.execute("SELECT COUNT(*) FROM events WHERE workspace_id = ? AND event_type NOT IN"
                        " ('user_attribute_change', 'user_identity_change')", (workspace_id,)).fetchone()[0]
    profiles, state_bytes = StateStore(conn, workspace_id).sizes()
    sizes = {}
    if with_definitions:
        members = MemberStore(conn, workspace_id)
        sizes = {r.name: members.size(r.id) for r in DefinitionStore(conn, workspace_id).all("audience")}
    changes = conn.execute("SELECT COUNT(*) FROM audience_changes").fetchone()[0]
    return {"events": world["events"], "stored": int(sent), "seconds": elapsed, "cpu": cpu,
            "step_seconds": timed.seconds, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "profiles_with_state": profiles, "state_bytes": state_bytes, "audience_sizes": sizes,
            "changes": int(changes),
            "profiles": int(conn.execute("SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL").fetchone()[0])}


def child(*args: str) -> dict[str, Any]:
    return run_child(BENCH, *args)


# Backfill (in a subprocess) -----------------------------------------------------------------------------------------


BACKFILLED: list[tuple[str, str, dict[str, Any]]] = [
    ("calculated", "spend_30d (backfill)", {"data_point": {**PURCHASE, "attribute_name": "total_amount"},
                                            "calculation_type": "sum", "time_period": within(30)}),
    ("audience", "Shoe browsers (backfill)", {"event": {
        "event_type": "screen_view", "name": "product", "within": "30d", "frequency": {"at_least": 2},
        "conditions": [{"attribute_name": "category", "operator": "equals", "value": "shoes"}]}}),
]


def backfill_run(directory: Path, profile: Path | None) -> dict[str, Any]:
    world = json.loads((directory / "world.json").read_text())
    workspace_id = world["created"]["workspace_id"]
    db = Database(DatabaseUrl.parse(f"sqlite:///{directory / 'kaon.db'}"), data_dir=directory)
    conn = db.conn()
    out: dict[str, Any] = {}
    profiler = cProfile.Profile() if profile else None
    for kind, name, definition in BACKFILLED:
        now = now_ms()
        if kind == "calculated":
            row = service.create_calculated(conn, workspace_id, {"name": name, "draft_definition": definition},
                                            ACTOR, now)
            started = time.perf_counter()
            service.activate_calculated(conn, workspace_id, row.id, ACTOR, now)
        else:
            row = service.create_audience(conn, workspace_id, {"name": name, "definition": definition}, ACTOR, now)
            started = time.perf_counter()
            service.activate_audience(conn, workspace_id, row.id, ACTOR, now)
        if profiler:
            profiler.enable()
        pages = run_backfills(conn)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        done = DefinitionStore(conn, workspace_id).get(kind, row.id)
        out[name] = {"kind": kind, "seconds": seconds, "pages": pages, "status": done.status,
                     "events": int(done.progress.get("events_done", 0)),
                     "events_total": done.progress.get("events_total"),
                     "history": int(done.progress.get("history_events") or 0),
                     "profiles": int(done.progress.get("profiles_done", 0)),
                     "size": MemberStore(conn, workspace_id).size(row.id) if kind == "audience" else None}
    if profiler and profile:
        profiler.dump_stats(str(profile))
    out["stored_events"] = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    out["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


# Latency through `kaon serve` ---------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def latency(directory: Path, rate: float, seconds: float, warmup: float, seed: int) -> dict[str, Any]:
    world = json.loads((directory / "world.json").read_text())
    created = world["created"]
    workspace_id, server_input = created["workspace_id"], server_input_of(created)
    db = Database(DatabaseUrl.parse(f"sqlite:///{directory / 'kaon.db'}"), migrate_schema=False,
                  data_dir=directory)
    conn = db.conn()
    audience_id = DefinitionStore(conn, workspace_id).by_name("audience", PROBE_AUDIENCE)
    assert audience_id is not None
    after = conn.execute("SELECT COALESCE(MAX(id), 0) FROM audience_changes").fetchone()[0]
    # Drop the processed log entries first, as the server's 5-s truncation would have during the catch-up (its
    # first truncation would otherwise delete all 100,000 entries at once and hold up the door for seconds).
    writer = SqliteLogWriter(directory / "log", "0")
    truncating = time.perf_counter()
    dropped = writer.truncate(OffsetStore(conn).get("0"))
    truncated = (dropped, time.perf_counter() - truncating)
    writer.close()
    port = free_port()
    server = Server("kaon", [sys.executable, "-m", "kaon", "serve", "--data-dir", str(directory), "--port",
                             str(port)], port, directory / "serve.log", "/api/v1/health", 200)
    rng = random.Random(seed)
    sent: dict[str, float] = {}  # customer id -> wall ms just before sending
    acked: dict[str, float] = {}
    seen: dict[int, tuple[float, int]] = {}  # mpid -> (wall ms the row was first read, recorded_ms)
    stop = threading.Event()

    def poll() -> None:
        last = after
        members = MemberStore(db.conn(), workspace_id)  # this thread's own connection
        while not stop.is_set():
            found = members.changes(audience_id.id, 1000, after=last)
            at = time.time() * 1000
            for change in found:
                if change["action"] == "enter":
                    seen.setdefault(change["mpid"], (at, change["recorded_unixtime_ms"]))
                last = change["id"]
            if not found:
                time.sleep(0.005)

    poller = threading.Thread(target=poll, name="poller", daemon=True)
    try:
        poller.start()
        http = HTTPConnection("127.0.0.1", port, timeout=10)
        auth = "Basic " + base64.b64encode(f"{server_input['key']}:{server_input['secret']}".encode()).decode()
        total = int((warmup + seconds) * rate)
        begin = time.monotonic() + 0.5
        lateness = []
        for k in range(total):
            due = begin + k / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                lateness.append(-wait)
            person = Person(rng, 10_000_000 + k)
            person.customer_id = f"probe-{k}"
            at = now_ms()
            batch = a_batch(rng, person, at - 10 * 60_000, rng.randrange(2, 12), f"probe{k}")
            for event in batch["events"]:  # the session ended just now, and ended with a purchase
                event["data"]["timestamp_unixtime_ms"] = min(event["data"]["timestamp_unixtime_ms"], at)
            last = commerce_event(rng, person, "purchase", {"timestamp_unixtime_ms": at,
                                                            "source_message_id": f"probe{k}-buy"})
            batch["events"].append(last)
            body = json.dumps(batch).encode()
            measured = k >= int(warmup * rate)
            sent_ms = time.time() * 1000
            http.request("POST", "/v2/events", body=body, headers={"Authorization": auth,
                                                                    "Content-Type": "application/json"})
            response = http.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"POST /v2/events answered {response.status}")
            if measured:
                sent[person.customer_id] = sent_ms
                acked[person.customer_id] = time.time() * 1000
        http.close()
        sent_all = time.monotonic()
        owners: dict[str, int] = {}
        while time.monotonic() - sent_all < 60:
            pending = [c for c in sent if c not in owners]
            for chunk_start in range(0, len(pending), 500):
                chunk = pending[chunk_start:chunk_start + 500]
                marks = ", ".join("?" * len(chunk))
                owners.update({str(v): int(m) for v, m in conn.execute(
                    f"SELECT value, mpid FROM identities WHERE workspace_id = ? AND identity_type = 'customer_id'"
                    f" AND value IN ({marks})", (workspace_id, *chunk))})
            if len(owners) == len(sent) and all(m in seen for m in owners.values()):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        status = server.stop()
    missing = [c for c in sent if owners.get(c) not in seen]
    visible = [seen[owners[c]][0] - t for c, t in sent.items() if c not in missing]
    recorded = [seen[owners[c]][1] - t for c, t in sent.items() if c not in missing]
    ack = [acked[c] - t for c, t in sent.items()]
    first = min(sent.values(), default=0.0)
    worst = sorted(((seen[owners[c]][0] - t, t - first, acked[c] - t) for c, t in sent.items() if c not in missing),
                   reverse=True)[:5]
    return {"probes": len(sent), "missing": len(missing), "rate": rate, "seconds": seconds, "exit": status,
            "worst": worst, "truncated": truncated,
            "late_sends": len(lateness), "max_lateness_ms": 1000 * max(lateness, default=0.0),
            "ack": ack, "recorded": recorded, "visible": visible}


# The report -------------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="process-stage runs of each kind, alternating")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-rate", type=float, default=100.0, help="batches per second (each a new user)")
    parser.add_argument("--latency-warmup", type=float, default=3.0, help="seconds of unmeasured sending first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="also profile a run with definitions and the backfills (cProfile)"
                        " to this file and FILE.backfill")
    parser.add_argument("--one", choices=("with", "without"), help=argparse.SUPPRESS)
    parser.add_argument("--backfill", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.dir, args.one == "with", args.profile_out)))
        return 0
    if args.backfill:
        print(json.dumps(backfill_run(args.dir, args.profile_out)))
        return 0
    return measure(args)


def show_profile(path: Path, what: str) -> None:
    print(f"\nprofile of {what} (cProfile, {path}): top 25 by own time, then top 25 by cumulative time")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


def copy_world(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


def tree() -> str:
    """The commit measured (`-dirty`: with uncommitted changes)."""
    done = subprocess.run(["git", "-C", str(BENCH.parent), "describe", "--always", "--dirty"], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or "unknown"


def measure(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}; load average before {os.getloadavg()[0]:.2f}; tree {tree()}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="kaon-bench-audiences-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        world = write_world(work / "world", args.users, args.events, args.seed)
        print(f"world: {world['users']:,} users ({world['active_users']:,} with sessions), {world['events']:,} events"
              f" in {world['batches']:,} batches over 30 days (written in {time.perf_counter() - started:.0f} s):"
              f" {', '.join(f'{k} {v:,}' for k, v in sorted(world['kinds'].items(), key=lambda kv: -kv[1]))}")
        print(f"definitions: {len(audiences(0))} audiences, {len(CALCULATED)} calculated attributes")
        runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
        kept: Path | None = None
        for round_ in range(args.rounds):
            for kind in ("without", "with"):
                target = copy_world(work / "world", work / f"run-{round_}-{kind}")
                found = child("--one", kind, "--dir", str(target))
                runs[kind].append(found)
                rate = found["events"] / found["seconds"]
                share = f", audiences step {100 * found['step_seconds'] / found['seconds']:.1f} % of the time" \
                    if kind == "with" else ""
                print(f"round {round_ + 1} {kind:<7} definitions: {rate:,.0f} events/s"
                      f" ({found['events'] / found['cpu']:,.0f} events/CPU-s, {found['seconds']:.1f} s,"
                      f" peak RSS {found['rss_kb'] / 1024:.0f} MiB){share}", flush=True)
                if found["stored"] != found["events"]:
                    print(f"  FAILED: stored {found['stored']:,} of {found['events']:,} events")
                    failed = True
                if kind == "with" and (not found["changes"] or not found["audience_sizes"].get(PROBE_AUDIENCE)):
                    print("  FAILED: no membership changes were recorded")
                    failed = True
                if kind == "with":
                    if kept is not None:
                        shutil.rmtree(kept)
                    kept = target
                else:
                    shutil.rmtree(target)
        assert kept is not None
        if args.profile:
            target = copy_world(work / "world", work / "profiled")
            child("--one", "with", "--dir", str(target), "--profile-out", str(args.profile))
            shutil.rmtree(target)
            show_profile(args.profile, "a process-stage run with definitions")
            copy_world(kept, work / "profiled")  # the backfills are profiled on a copy, after the timed ones
        last = runs["with"][-1]
        print("\naudience sizes after the run: " + ", ".join(f"{n} {s:,}" for n, s in last["audience_sizes"].items()))
        lat = latency(kept, args.latency_rate, args.latency_seconds, args.latency_warmup, args.seed + 1)
        print(f"latency: {lat['probes']:,} probe batches at {lat['rate']:g}/s for {lat['seconds']:g} s,"
              f" {lat['missing']} never entered; {lat['late_sends']} sends late (max {lat['max_lateness_ms']:.0f} ms);"
              f" kaon serve exited {lat['exit']}")
        print(f"  before the server started: {lat['truncated'][0]:,} processed log entries truncated in"
              f" {lat['truncated'][1]:.1f} s")
        print("  slowest probes (readable after, sent at, 202 after; s): " + ", ".join(
            f"{v / 1000:.2f} at +{at / 1000:.1f} (202 {a / 1000:.2f})" for v, at, a in lat["worst"]))
        failed = failed or lat["missing"] > 0 or lat["exit"] != 0
        filled = child("--backfill", "--dir", str(kept))
        for name, got in filled.items():
            if isinstance(got, dict) and (got["status"] != "active" or got["events"] != got["events_total"]):
                print(f"backfill of {name!r} FAILED: {got}")
                failed = True
        if args.profile:
            backfill_profile = args.profile.with_name(args.profile.name + ".backfill")
            child("--backfill", "--dir", str(work / "profiled"), "--profile-out", str(backfill_profile))
            show_profile(backfill_profile, "the two backfills")
    report(world, runs, lat, filled)
    return 1 if failed else 0


def report(world: dict[str, Any], runs: dict[str, list[dict[str, Any]]], lat: dict[str, Any],
           filled: dict[str, Any]) -> None:
    rates = {k: [r["events"] / r["seconds"] for r in v] for k, v in runs.items()}
    cpu_rates = {k: [r["events"] / r["cpu"] for r in v] for k, v in runs.items()}
    median = {k: statistics.median(v) for k, v in rates.items()}
    ratio = median["with"] / median["without"]
    cpu_ratio = statistics.median(cpu_rates["with"]) / statistics.median(cpu_rates["without"])
    share = statistics.median(r["step_seconds"] / r["seconds"] for r in runs["with"])
    last = runs["with"][-1]
    per_profile = last["state_bytes"] / max(1, last["profiles_with_state"])
    rss = {k: statistics.median(r["rss_kb"] for r in v) / 1024 for k, v in runs.items()}
    print(f"\n== Audiences and calculated attributes: {world['users']:,} users, {world['events']:,} events,"
          f" {len(audiences(0))} audiences, {len(CALCULATED)} calculated attributes ==")
    print(f"{'figure':<58} {'value':>22}  {'target':>12}  verdict")

    def row(figure: str, value: str, target: str = "", ok: bool | None = None) -> None:
        print(f"{figure:<58} {value:>22}  {target:>12}  {'' if ok is None else verdict(ok)}")

    row("process stage, no definitions (events/s, median)", f"{median['without']:,.0f}")
    row("process stage, with definitions (events/s, median)", f"{median['with']:,.0f}")
    row("throughput ratio with / without (wall)", f"{ratio:.2f}", f">= {RATIO_TARGET}", ratio >= RATIO_TARGET)
    row("throughput ratio with / without (CPU time)", f"{cpu_ratio:.2f}")
    row("in-run: 1 - audiences step's share of the stage's time", f"{1 - share:.2f}")
    p50, p99 = percentile(lat["visible"], 50) / 1000, percentile(lat["visible"], 99) / 1000
    row(f"latency send -> change row readable, p50 (s) at {lat['rate']:g}/s", f"{p50:.3f}")
    row("latency send -> change row readable, p99 (s)", f"{p99:.3f}", f"< {P99_TARGET_S:g}", p99 < P99_TARGET_S)
    row("latency send -> change row readable, max (s)", f"{max(lat['visible']) / 1000:.3f}")
    row("latency send -> recorded_ms, p50 / p99 (s)", f"{percentile(lat['recorded'], 50) / 1000:.3f} / "
        f"{percentile(lat['recorded'], 99) / 1000:.3f}")
    row("latency send -> 202, p50 / p99 / max (s)", f"{percentile(lat['ack'], 50) / 1000:.3f} / "
        f"{percentile(lat['ack'], 99) / 1000:.3f} / {max(lat['ack']) / 1000:.3f}")
    for name, got in filled.items():
        if not isinstance(got, dict):
            continue
        rate = got["history"] / got["seconds"]
        extra = f", {got['profiles']:,} profiles evaluated" if got["kind"] == "audience" else ""
        row(f"backfill {got['kind']} '{name}' (history events/s)", f"{rate:,.0f}", f">= {BACKFILL_TARGET:,}",
            rate >= BACKFILL_TARGET)
        print(f"    {got['history']:,} stored events covered in {got['seconds']:.1f} s ({got['events']:,} of the"
              f" types it takes read: {got['events'] / got['seconds']:,.0f}/s){extra}, status {got['status']}")
    row("state per profile (bytes of profile_segments.state)", f"{per_profile:,.0f}")
    print(f"    {last['profiles_with_state']:,} of {last['profiles']:,} profiles hold state,"
          f" {last['state_bytes'] / 2**20:.1f} MiB in all")
    row("peak RSS of a run without / with definitions (MiB)", f"{rss['without']:.0f} / {rss['with']:.0f}")
    row("peak RSS of the backfill process (MiB)", f"{filled['rss_kb'] / 1024:.0f}")
    print(f"membership changes recorded in the run: {last['changes']:,}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
