"""Consent: purposes settings, history in the real process stage, merges/unmerge and erasure of history rows."""

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kaon.destinations.event import DeliveryEvent
from kaon.destinations.webhook import event_json
from kaon.governance.consent import (
    SETTING,
    check_rule_purposes,
    consent_changes,
    load_settings,
    parse_settings,
    purposes_in_use,
)
from kaon.governance.consent_store import ConsentHistory, Source
from kaon.governance.dsr_erase import erase, find_subject
from kaon.identity.merge import merge, unmerge
from kaon.identity.store import ProfileStore
from kaon.log.base import KIND_MPARTICLE_BATCH, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_steps
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.outputs import OutputStore
from kaon.store.tx import transaction

NOW = 1_800_000_000_000
DAY = 86_400_000


def record(consented: bool, at: int, **extra: Any) -> dict[str, Any]:
    return {"consented": consented, "timestamp_unixtime_ms": at, **extra}


class World:
    def __init__(self, tmp: Path) -> None:
        self.db = Database(DatabaseUrl.parse(f"sqlite:///{tmp / 'kaon.db'}"))
        self.conn = self.db.conn()
        config = ConfigStore(self.conn)
        self.ws = config.create_workspace("w").id
        self.input_id = config.create_input(self.ws, "app", "server").input.id
        self.writer = SqliteLogWriter(tmp / "log", "0")
        steps = [s for s in default_steps(dedup_window_ms=DAY) if s.name != "catalog"]  # not needed here
        self.stage = ProcessStage(self.db, SqliteLogReader(tmp / "log"), steps, clock=lambda: NOW)
        self.received = NOW - 10_000

    def send(self, consent: dict[str, Any], customer: str = "c1", **batch: Any) -> None:
        self.received += 1
        body = {"environment": "production", "user_identities": {"customer_id": customer},
                "consent_state": consent, "events": [], **batch}
        self.writer.append([LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=self.ws, input_id=self.input_id,
                                     received_ms=self.received, body=json.dumps(body).encode())])
        self.stage.drain(NOW + 1)

    def mpid(self, customer: str = "c1") -> int:
        owner = ProfileStore(self.conn, self.ws).owners([("customer_id", customer)])
        return next(iter(owner.values()))

    def current(self, customer: str = "c1") -> dict[str, Any]:
        row = ProfileStore(self.conn, self.ws).row(self.mpid(customer))
        assert row is not None
        return dict(row["consent"])

    def history(self, mpid: int) -> list[dict[str, Any]]:
        return ConsentHistory(self.conn, self.ws).history([mpid])

    def stat(self, metric: str) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute(
            "SELECT reason, SUM(count) FROM input_stats WHERE metric = ? GROUP BY reason", (metric,))}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# Settings

def test_settings_names_are_trimmed_and_lowercased() -> None:
    settings = parse_settings({"gdpr_purposes": [{"name": " Marketing "}, {"name": "Analytics", "description": "x"}]})
    assert [(p.name, p.description) for p in settings.gdpr_purposes] == [("marketing", ""), ("analytics", "x")]


@pytest.mark.parametrize(("raw", "where"), [
    ({"gdpr_purposes": [{"name": "a"}, {"name": " A"}]}, "gdpr_purposes[1].name"),
    ({"gdpr_purposes": [{"name": "  "}]}, "gdpr_purposes[0].name"),
    ({"gdpr_purposes": [{"description": "no name"}]}, "name"),
    ({"gdpr_purposes": [{"name": "a", "colour": "red"}]}, "colour"),
    ({"gdpr_purposes": "marketing"}, "gdpr_purposes"),
])
def test_bad_settings_are_refused_with_where(raw: dict[str, Any], where: str) -> None:
    with pytest.raises((ValueError, msgspec.ValidationError)) as error:
        parse_settings(raw)
    assert where in str(error.value)


def test_rule_purposes_are_checked_only_once_configured(world: World) -> None:
    rules = {"consent": {"gdpr_purposes": ["marketing"]}}
    check_rule_purposes(world.conn, world.ws, rules)  # unconfigured: anything goes
    ConfigStore(world.conn).set_setting(world.ws, SETTING, {"gdpr_purposes": [{"name": "analytics"}]})
    with pytest.raises(ValueError, match="'marketing'"):
        check_rule_purposes(world.conn, world.ws, rules)
    check_rule_purposes(world.conn, world.ws, {"consent": {"gdpr_purposes": [" Analytics "]}})
    check_rule_purposes(world.conn, world.ws, {"sampling_percent": 50})


def test_connections_naming_unknown_purposes_are_refused(world: World) -> None:
    conn = world.conn
    ConfigStore(conn).set_setting(world.ws, SETTING, {"gdpr_purposes": [{"name": "marketing"}]})
    input_id = ConfigStore(conn).create_input(world.ws, "s", "server").input.id
    store = OutputStore(conn, world.ws)
    output = store.create_output("hook", "webhook", {"base_url": "http://127.0.0.1:9/x"}, True)
    with pytest.raises(ValueError, match="'ads'"):
        store.create_connection(input_id, output.id, True, {"consent": {"gdpr_purposes": ["ads"]}})
    made = store.create_connection(input_id, output.id, True, {"consent": {"gdpr_purposes": ["Marketing"]}})
    assert purposes_in_use(conn, world.ws) == {"marketing": [made.id]}
    with pytest.raises(ValueError, match="'ads'"):
        store.update_connection(made.id, rules={"consent": {"gdpr_purposes": ["marketing", "ads"]}})


# History in the process stage

def test_older_record_is_kept_in_history_but_newest_stays_current(world: World) -> None:
    world.send({"gdpr": {"Marketing": record(True, 2_000, document="v2", location="web", hardware_id="h1")}})
    world.send({"gdpr": {"marketing": record(False, 1_000, document="v1")}})
    assert world.current()["gdpr"]["marketing"]["consented"] is True
    history = world.history(world.mpid())
    assert [(h["purpose"], h["consented"], h["timestamp_unixtime_ms"]) for h in history] == [
        ("marketing", True, 2_000), ("marketing", False, 1_000)]
    newest = history[0]
    assert (newest["document"], newest["location"], newest["hardware_id"], newest["regulation"]) == (
        "v2", "web", "h1", "gdpr")
    assert newest["input_id"] == world.input_id and newest["received_ms"] == world.received - 1 and newest["source"]


def test_newer_record_becomes_current_and_repeats_are_not_appended(world: World) -> None:
    world.send({"gdpr": {"marketing": record(True, 1_000)}})
    world.send({"gdpr": {"marketing": record(True, 1_000)}})  # the web SDK repeats its state
    world.send({"gdpr": {"marketing": record(False, 3_000)},
                "ccpa": {"data_sale_opt_out": record(True, 3_000)}})
    assert world.current()["gdpr"]["marketing"]["consented"] is False
    assert world.current()["ccpa"]["data_sale_opt_out"]["consented"] is True
    history = world.history(world.mpid())
    shown = [(h["regulation"], h["purpose"], h["consented"], h["timestamp_unixtime_ms"]) for h in history]
    assert sorted(shown[:2]) == [("ccpa", "data_sale_opt_out", True, 3_000), ("gdpr", "marketing", False, 3_000)]
    assert shown[2] == ("gdpr", "marketing", True, 1_000)
    assert len(history) == 3


def test_a_record_without_timestamp_takes_the_receive_time(world: World) -> None:
    world.send({"gdpr": {"marketing": {"consented": True}}})
    assert world.history(world.mpid())[0]["timestamp_unixtime_ms"] == world.received
    assert world.current()["gdpr"]["marketing"]["timestamp_unixtime_ms"] == world.received


def test_unknown_purposes_are_stored_and_counted_once_configured(world: World) -> None:
    world.send({"gdpr": {"ads": record(True, 1_000)}})
    assert world.stat("consent_unknown_purpose") == {}  # nothing configured yet
    ConfigStore(world.conn).set_setting(world.ws, SETTING, {"gdpr_purposes": [{"name": "marketing"}]})
    world.send({"gdpr": {"ads": record(True, 2_000), "marketing": record(True, 2_000)}})
    assert world.stat("consent_unknown_purpose") == {"ads": 1}
    assert world.current()["gdpr"]["ads"]["timestamp_unixtime_ms"] == 2_000  # stored, never dropped
    assert {h["purpose"] for h in world.history(world.mpid())} == {"ads", "marketing"}
    assert load_settings(world.conn, world.ws) is not None


# Merges, unmerge, erasure

def _two_profiles(world: World) -> tuple[int, int]:
    world.send({"gdpr": {"marketing": record(True, 1_000)}}, customer="a")
    world.send({"gdpr": {"marketing": record(False, 2_000), "analytics": record(True, 500)}}, customer="b")
    return world.mpid("a"), world.mpid("b")


def test_merge_moves_history_to_the_survivor_and_unmerge_restores_it(world: World) -> None:
    a, b = _two_profiles(world)
    before_a, before_b = world.history(a), world.history(b)
    assert len(before_a) == 1 and len(before_b) == 2
    with transaction(world.conn):
        merge_id = merge(world.conn, world.ws, a, b, reason="test", actor="test", now_ms=NOW)
    merged = world.history(a)
    assert len(merged) == 3 and world.history(b) == []
    assert {h["id"] for h in merged} == {h["id"] for h in before_a + before_b}
    row = ProfileStore(world.conn, world.ws).row(a)
    assert row is not None and row["consent"]["gdpr"]["marketing"]["consented"] is False  # newest wins
    world.send({"gdpr": {"marketing": record(True, 5_000)}}, customer="a")  # after the merge: stays with a
    with transaction(world.conn):
        unmerge(world.conn, world.ws, merge_id, actor="test", now_ms=NOW)
    after_a = world.history(a)
    assert world.history(b) == before_b
    assert [h["timestamp_unixtime_ms"] for h in after_a] == [5_000, 1_000]
    assert [h["mpid"] for h in after_a] == [str(a), str(a)]


def test_erasure_deletes_history(world: World) -> None:
    a, b = _two_profiles(world)
    with transaction(world.conn):
        counts = erase(world.conn, find_subject(world.conn, world.ws, {"customer_id": "b"}))
    assert counts["consent_history"] == 2
    assert world.history(b) == [] and len(world.history(a)) == 1


def test_history_append_is_idempotent_per_identical_record(world: World) -> None:
    history = ConsentHistory(world.conn, world.ws)
    source = Source(received_ms=1)
    with transaction(world.conn):
        assert history.append(7, "gdpr", "x", record(True, 1, document=None), source)
        assert not history.append(7, "gdpr", "x", record(True, 1), source)
        assert history.append(7, "gdpr", "x", record(True, 1, location="elsewhere"), source)
    assert len(history.history([7])) == 2


# Consent changes forwarded with the batch's events (mParticle's outbound `system_notifications`)

def test_consent_changes_name_the_purpose_with_current_and_old_records() -> None:
    old = {"gdpr": {"marketing": record(True, 1_000, document="v1")}}
    new = {"gdpr": {"marketing": record(False, 2_000, document="v2"), "analytics": record(True, 2_000)},
           "ccpa": {"data_sale_opt_out": record(True, 2_000)}}
    changes = {(c["type"], c["data"]["purpose"]): c["data"] for c in consent_changes(old, new)}
    assert set(changes) == {("gdpr_change", "marketing"), ("gdpr_change", "analytics"),
                            ("ccpa_change", "data_sale_opt_out")}
    marketing = changes[("gdpr_change", "marketing")]
    assert marketing["current"] == {"regulation": "gdpr", "document": "v2", "consented": False,
                                    "timestamp_unixtime_ms": 2_000, "location": None, "hardware_id": None}
    assert marketing["old"]["consented"] is True and marketing["old"]["document"] == "v1"
    assert changes[("gdpr_change", "analytics")]["old"] is None
    assert consent_changes(new, new) == []


def test_forwarded_events_carry_the_consent_changes_of_their_batch(world: World) -> None:
    outputs = OutputStore(world.conn, world.ws)
    hook = outputs.create_output("hook", "webhook", {"base_url": "http://127.0.0.1:9/hook"}, True)
    outputs.create_connection(world.input_id, hook.id, True, {})
    play = [{"event_type": "custom_event", "data": {"event_name": "Play", "custom_event_type": "media"}}]

    world.send({"gdpr": {"marketing": record(True, 1_000)}}, events=play)
    world.send({"gdpr": {"marketing": record(True, 1_000)}}, events=play)  # the same state again: no change
    world.send({"gdpr": {"marketing": record(False, 500)}}, events=play)  # older: history only, no change
    world.send({"gdpr": {"marketing": record(False, 2_000)}}, events=play)

    jobs = [msgspec.msgpack.decode(row[0], type=DeliveryEvent) for row in world.conn.execute(
        "SELECT payload FROM delivery_jobs ORDER BY id")]
    assert [len(job.system_notifications) for job in jobs] == [1, 0, 0, 1]
    first, last = jobs[0].system_notifications[0], jobs[3].system_notifications[0]
    assert (first["type"], first["data"]["purpose"], first["data"]["old"]) == ("gdpr_change", "marketing", None)
    assert (last["data"]["current"]["consented"], last["data"]["old"]["consented"]) == (False, True)
    assert event_json(jobs[3])["system_notifications"] == [last]
    assert "system_notifications" not in event_json(jobs[1])


def test_history_records_name_the_stored_batch_they_came_in(world: World) -> None:
    world.send({"gdpr": {"marketing": record(True, 1_000)}})
    world.send({"gdpr": {"marketing": record(False, 2_000)}, "ccpa": {"data_sale_opt_out": record(True, 2_000)}})
    batches = [row[0] for row in world.conn.execute("SELECT id FROM batches ORDER BY id")]
    history = world.history(world.mpid())
    assert sorted((h["batch_id"], h["regulation"]) for h in history) == [
        (batches[0], "gdpr"), (batches[1], "ccpa"), (batches[1], "gdpr")]


def test_a_state_restated_without_timestamps_is_no_change(world: World) -> None:
    outputs = OutputStore(world.conn, world.ws)
    hook = outputs.create_output("hook", "webhook", {"base_url": "http://127.0.0.1:9/hook"}, True)
    outputs.create_connection(world.input_id, hook.id, True, {})
    play = [{"event_type": "custom_event", "data": {"event_name": "Play", "custom_event_type": "media"}}]
    for _ in range(3):  # a server feed that sends no timestamps: each record takes its batch's receive time
        world.send({"gdpr": {"marketing": {"consented": True, "document": "v1"}}}, events=play)
    world.send({"gdpr": {"marketing": {"consented": True, "document": "v2"}}}, events=play)
    jobs = [msgspec.msgpack.decode(row[0], type=DeliveryEvent) for row in world.conn.execute(
        "SELECT payload FROM delivery_jobs ORDER BY id")]
    assert [len(job.system_notifications) for job in jobs] == [1, 0, 0, 1]
    assert jobs[3].system_notifications[0]["data"]["old"]["document"] == "v1"
