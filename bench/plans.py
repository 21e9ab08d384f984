"""Data plans benchmark: process-stage throughput with a 200-data-point plan active vs no plan.

Run: `.venv/bin/python bench/plans.py [--batches 2000] [--events 10] [--rounds 3]`.
Each run writes the same batches to a fresh ingest log in a temp dir, then times the real ProcessStage
(`default_steps`) draining it. "no plan": the batches name no plan. "plan": they name a plan whose active
version has 200 data points (custom events with typed, required and enum attributes, user attributes,
identities) and blocking on; every 10th event is unplanned and every 7th has an invalid value, so the
validator, the report and the quarantine all do work. Prints events/s per run (best of rounds) and the ratio.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from kaon.governance.plans_document import check_plan
from kaon.governance.plans_store import PlanStore
from kaon.log.base import KIND_MPARTICLE_BATCH, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_steps
from kaon.store.db import Database, DatabaseUrl

WS = "ws_bench"
DAY = 86_400_000
POINTS = 200


def plan() -> dict[str, Any]:
    points: list[dict[str, Any]] = [
        {"match": {"type": "custom_event", "criteria": {"event_name": f"Event {i}", "custom_event_type": "other"}},
         "validator": {"type": "json_schema", "definition": {"properties": {"data": {
             "additionalProperties": True,
             "properties": {"custom_attributes": {
                 "additionalProperties": False, "required": ["price"],
                 "properties": {"price": {"type": "number", "minimum": 0},
                                "sku": {"type": "string", "pattern": "^[A-Z0-9-]+$"},
                                "tier": {"enum": ["gold", "silver", "bronze"]},
                                "gift": {"type": "boolean"}}}}}}}}}
        for i in range(POINTS - 2)]
    points.append({"match": {"type": "user_attributes", "criteria": {}}, "validator": {"type": "json_schema",
                   "definition": {"additionalProperties": True, "properties": {"age": {"type": "integer"}}}}})
    points.append({"match": {"type": "user_identities", "criteria": {}}, "validator": {"type": "json_schema",
                   "definition": {"properties": {"customerid": {"type": "string"},
                                                 "email": {"type": "string", "format": "email"}}}}})
    return {"data_plan_id": "bench", "data_plan_versions": [{
        "version": 1, "activated_environment": "production", "version_document": {"data_points": points},
        "blocking": {"unplanned_events": True, "unplanned_event_attributes": True}}]}


def batches(count: int, per_batch: int, with_plan: bool) -> list[bytes]:
    out = []
    n = 0
    for b in range(count):
        events = []
        for _ in range(per_batch):
            n += 1
            name = f"Unplanned {n % 5}" if n % 10 == 0 else f"Event {n % (POINTS - 2)}"
            price: Any = "abc" if n % 7 == 0 else f"{n % 100}.5"
            events.append({"event_type": "custom_event", "data": {
                "event_name": name, "custom_event_type": "other", "source_message_id": f"m{n}",
                "custom_attributes": {"price": price, "sku": f"SKU-{n % 50}", "tier": "gold", "gift": "false"}}})
        doc: dict[str, Any] = {"environment": "production", "events": events, "user_attributes": {"age": b % 90},
                               "user_identities": {"customer_id": f"c{b % 500}", "email": f"u{b % 500}@example.com"}}
        if with_plan:
            doc["context"] = {"data_plan": {"plan_id": "bench"}}
        out.append(json.dumps(doc).encode())
    return out


def run(bodies: list[bytes], with_plan: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(DatabaseUrl.parse(f"sqlite:///{Path(tmp) / 'kaon.db'}"))
        if with_plan:
            parsed, errors = check_plan(plan())
            assert parsed is not None, errors
            PlanStore(db.conn(), WS).create(parsed)
        writer = SqliteLogWriter(Path(tmp) / "log", "0")
        writer.append([LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=WS, input_id="in",
                                received_ms=1_800_000_000_000, body=b) for b in bodies])
        reader = SqliteLogReader(Path(tmp) / "log")
        stage = ProcessStage(db, reader, default_steps(dedup_window_ms=DAY))
        started = time.perf_counter()
        while stage.run_once():
            pass
        elapsed = time.perf_counter() - started
        events = db.conn().execute("SELECT COUNT(*) FROM events").fetchone()[0]
        quarantined = db.conn().execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        writer.close()
        reader.close()
        print(f"  {'plan   ' if with_plan else 'no plan'}: {elapsed:6.2f} s, {events} events stored, "
              f"{quarantined} batches quarantined")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    total = args.batches * args.events
    best: dict[bool, float] = {}
    for _ in range(args.rounds):
        for with_plan in (False, True):
            elapsed = run(batches(args.batches, args.events, with_plan), with_plan)
            best[with_plan] = min(best.get(with_plan, elapsed), elapsed)
    no_plan, planned = total / best[False], total / best[True]
    print(f"no plan: {no_plan:,.0f} events/s   plan ({POINTS} data points): {planned:,.0f} events/s   "
          f"ratio {planned / no_plan:.2f}")


if __name__ == "__main__":
    main()
