"""The plans step in the real process stage: flag invalid data, block unplanned data to the quarantine, replay."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.governance.plans_document import check_plan, check_version
from kaon.governance.plans_store import PlanStore
from kaon.governance.quarantine import QuarantineStore
from kaon.log.base import KIND_MPARTICLE_BATCH, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_steps
from kaon.store.db import Database, DatabaseUrl

WS = "ws_plans"
NOW = 1_800_000_000_000
DAY = 86_400_000


def plan_doc(version: int, names: list[str], **blocking: bool) -> dict[str, Any]:
    points: list[dict[str, Any]] = [
        {"match": {"type": "custom_event", "criteria": {"event_name": n, "custom_event_type": "other"}},
         "validator": {"type": "json_schema", "definition": {"properties": {"data": {"properties": {
             "custom_attributes": {"additionalProperties": False,
                                   "properties": {"price": {"type": "number"}}}}}}}}}
        for n in names]
    points.append({"match": {"type": "user_attributes", "criteria": {}},
                   "validator": {"type": "json_schema", "definition": {"additionalProperties": False,
                                                                       "properties": {"tier": {}}}}})
    points.append({"match": {"type": "user_identities", "criteria": {}}})
    return {"version": version, "activated_environment": "production", "blocking": blocking,
            "version_document": {"data_points": points}}


def body(*events: tuple[str, dict[str, Any]], plan: str | None = "shop", **batch: Any) -> bytes:
    doc: dict[str, Any] = {
        "environment": "production", "user_identities": {"customer_id": "c1"},
        "events": [{"event_type": "custom_event",
                    "data": {"event_name": n, "custom_event_type": "other", "source_message_id": f"m-{n}",
                             "custom_attributes": a}} for n, a in events], **batch}
    if plan:
        doc["context"] = {"data_plan": {"plan_id": plan}}
    return json.dumps(doc).encode()


class World:
    def __init__(self, tmp: Path) -> None:
        self.log_dir = tmp / "log"
        self.db = Database(DatabaseUrl.parse(f"sqlite:///{tmp / 'kaon.db'}"))
        self.writer = SqliteLogWriter(self.log_dir, "0")
        self.reader = SqliteLogReader(self.log_dir)
        self.stage = ProcessStage(self.db, self.reader, default_steps(dedup_window_ms=DAY), clock=lambda: NOW)

    def send(self, payload: bytes) -> None:
        self.writer.append([LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=WS, input_id="in1", received_ms=NOW,
                                     body=payload)])
        self.stage.drain(NOW + 1)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return self.db.conn().execute(sql, args).fetchall()

    def names(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT event_name FROM events ORDER BY id")]

    def stat(self, metric: str) -> int:
        return int(self.rows("SELECT COALESCE(SUM(count), 0) FROM input_stats WHERE metric = ?", metric)[0][0])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    found = World(tmp_path)
    plan, errors = check_plan({"data_plan_id": "shop", "data_plan_versions": [
        plan_doc(1, ["Buy"], unplanned_events=True, unplanned_event_attributes=True,
                 unplanned_user_attributes=True)]})
    assert plan is not None, errors
    PlanStore(found.db.conn(), WS).create(plan)
    yield found
    found.writer.close()
    found.reader.close()


def test_unplanned_data_is_blocked_and_quarantined_invalid_data_is_flagged(world: World) -> None:
    world.send(body(("Buy", {"price": "abc", "coupon": "X"}), ("Spy", {"a": 1}),
                    user_attributes={"tier": "gold", "secret": "s"}))
    assert world.names() == ["Buy"]
    stored = json.loads(world.rows("SELECT body FROM events")[0][0])
    assert stored["data"]["custom_attributes"] == {"price": "abc"}  # invalid kept, unplanned stripped
    assert world.rows("SELECT name FROM profile_attributes") == [("tier",)]
    [entry], _ = QuarantineStore(world.db.conn(), WS).page(10, None)
    assert {r["reason"] for r in entry["reasons"]} == {"unplanned_event", "unplanned_event_attribute",
                                                       "unplanned_user_attribute"}
    assert [e["data"]["event_name"] for e in entry["batch"]["events"]] == ["Buy", "Spy"]
    assert entry["batch"]["user_attributes"]["secret"] == "s"  # the original, before removal
    report = {(r["data_point"], r["violation"]): r["count"] for r in PlanStore(world.db.conn(), WS).report("shop", 0)}
    assert report == {("custom_event:other:Buy", "invalid_value"): 1,
                      ("custom_event:other:Buy", "unplanned_event_attribute"): 1,
                      ("custom_event:other:Spy", "unplanned_event"): 1,
                      ("user_attributes", "unplanned_user_attribute"): 1}
    assert world.stat("plan_invalid") == 1
    assert world.stat("events_blocked") == 1


def test_batches_without_a_plan_or_with_an_unknown_plan_pass(world: World) -> None:
    world.send(body(("Spy", {}), plan=None))
    world.send(body(("Spy2", {}), plan="nope"))
    assert world.names() == ["Spy", "Spy2"]
    assert world.rows("SELECT COUNT(*) FROM quarantine") == [(0,)]
    assert world.stat("plan_not_found") == 1


def test_an_inputs_default_plan_applies_to_batches_that_name_none(world: World) -> None:
    conn = world.db.conn()
    conn.execute("INSERT INTO input_default_plans (input_id, workspace_id, plan_id, plan_version)"
                 " VALUES ('in1', ?, 'shop', NULL)", (WS,))
    world.send(body(("Buy", {"price": 1}), ("Spy", {}), plan=None))
    assert world.names() == ["Buy"]
    [(blocked,)] = world.rows("SELECT blocked_events FROM quarantine WHERE plan_id = 'shop'")
    assert json.loads(blocked) == [1]
    # A plan named in the batch wins over the default; a default naming a missing version counts plan_not_found.
    world.send(body(("Spy3", {}), plan="nope"))
    conn.execute("UPDATE input_default_plans SET plan_version = 9")
    world.send(body(("Spy4", {}), plan=None))
    assert world.names() == ["Buy", "Spy3", "Spy4"]
    assert world.stat("plan_not_found") == 2


def test_replay_after_the_plan_is_fixed_stores_once_and_leaves_the_quarantine(world: World) -> None:
    world.send(body(("Buy", {"price": 1}), ("Spy", {"a": 1})))
    assert world.names() == ["Buy"]
    received = world.stat("events_received")
    store = PlanStore(world.db.conn(), WS)
    fixed, _ = check_version(plan_doc(2, ["Buy", "Spy"], unplanned_events=True))
    assert fixed is not None
    store.add_version("shop", fixed)
    quarantine = QuarantineStore(world.db.conn(), WS)
    assert len(quarantine.replay(world.log_dir, None)) == 1
    assert len(quarantine.replay(world.log_dir, None)) == 1  # asked twice before processing: applied once
    world.stage.drain(NOW + 1)
    assert world.names() == ["Buy", "Spy"]  # Buy is not stored twice
    assert quarantine.count() == 0
    assert world.stat("events_received") == received  # not counted again
    assert world.stat("quarantine_replayed") == 1
    report = {(r["version"], r["violation"]) for r in store.report("shop", 0)}
    assert report == {(1, "unplanned_event")}


def test_replay_while_still_blocked_is_quarantined_again(world: World) -> None:
    world.send(body(("Spy", {})))
    quarantine = QuarantineStore(world.db.conn(), WS)
    [first], _ = quarantine.page(10, None)
    quarantine.replay(world.log_dir, [first["id"]])
    world.stage.drain(NOW + 1)
    [again], _ = quarantine.page(10, None)
    assert again["id"] != first["id"]
    assert world.names() == []
