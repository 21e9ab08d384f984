"""Fan-out through the real process stage: jobs or counted drops, in the same transaction as the events."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kaon.destinations.event import DeliveryEvent
from kaon.log.base import KIND_MPARTICLE_BATCH, KIND_MPARTICLE_HISTORICAL, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.model.events import event_name
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.step import Step
from kaon.pipeline.steps import default_steps
from kaon.pipeline.work import Slice
from kaon.store.db import Database
from kaon.store.metrics import hour_of
from kaon.store.offsets import OffsetStore
from kaon.store.outputs import OutputStore
from support.pipeline import stage_parts

NOW = 1_800_000_000_000
DAY = 86_400_000
_unpack = msgspec.msgpack.Decoder(DeliveryEvent)


def batch(*names: str, customer: str = "cust-1", attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"environment": "production", "user_identities": {"customer_id": customer},
            "events": [{"event_type": "custom_event", "data": {
                "event_name": n, "custom_event_type": "other", "custom_attributes": attributes or {"i": str(i)},
                "timestamp_unixtime_ms": NOW - 96 * 3_600_000}} for i, n in enumerate(names)]}


@dataclass
class Env:
    db: Database
    writer: SqliteLogWriter
    reader: SqliteLogReader
    workspace_id: str
    input_id: str

    @property
    def outputs(self) -> OutputStore:
        return OutputStore(self.db.conn(), self.workspace_id)

    def connect(self, rules: dict[str, Any] | None = None, *, enabled: bool = True,
                output_enabled: bool = True) -> tuple[str, str]:
        output = self.outputs.create_output(f"hook-{len(self.outputs.outputs())}", "webhook",
                                            {"base_url": "http://127.0.0.1:9/hook"}, output_enabled)
        connection = self.outputs.create_connection(self.input_id, output.id, enabled, rules or {})
        return output.id, connection.id

    def send(self, body: Any, kind: str = KIND_MPARTICLE_BATCH) -> None:
        self.writer.append([LogEntry(kind=kind, workspace_id=self.workspace_id, input_id=self.input_id,
                                     received_ms=NOW, ip="1.2.3.4", body=json.dumps(body).encode())])

    def stage(self, steps: list[Step] | None = None) -> ProcessStage:
        return ProcessStage(self.db, self.reader, steps or default_steps(dedup_window_ms=DAY), clock=lambda: NOW)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.db.conn().execute(sql, args)]

    def events(self) -> dict[str, int]:
        return {name: id_ for id_, name in self.rows("SELECT id, event_name FROM events ORDER BY id")}

    def jobs(self, connection_id: str) -> list[DeliveryEvent]:
        return [_unpack.decode(r[0]) for r in self.rows(
            "SELECT j.payload FROM delivery_jobs j JOIN delivery_pending p ON p.job_id = j.id"
            " WHERE j.connection_id = ? ORDER BY j.id", connection_id)]

    def drops(self, connection_id: str) -> dict[int, str]:
        return dict(self.rows("SELECT event_id, reason FROM delivery_drops WHERE connection_id = ?", connection_id))

    def stats(self, connection_id: str) -> dict[tuple[str, str], int]:
        return {(m, r): n for m, r, n in self.rows(
            "SELECT metric, reason, count FROM output_stats WHERE connection_id = ? AND hour_ms = ?",
            connection_id, hour_of(NOW))}

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> Iterator[Env]:
    with stage_parts(tmp_path, "fanout", database_url) as parts:
        yield Env(parts.db, parts.writer, parts.reader, parts.workspace_id, parts.input_id)


def test_a_filter_creates_jobs_for_passing_events_and_counted_drops_for_the_others(env: Env) -> None:
    output_id, filtered = env.connect({"filters": {"event_names": {"deny": ["noise"]}},
                                       "transformations": [{"op": "set", "attribute": "via", "value": "kaon"}]})
    _, everything = env.connect()
    env.send(batch("keep", "noise", "keep-too"))
    assert env.stage().run_once() == 1
    events = env.events()
    jobs = env.jobs(filtered)
    assert [(j.event_id, event_name(j.event)) for j in jobs] == [(events["keep"], "keep"),
                                                                   (events["keep-too"], "keep-too")]
    mpid = env.rows("SELECT mpid FROM events WHERE id = ?", events["keep"])[0][0]
    assert mpid and all(j.mpid == mpid for j in jobs)
    assert all(j.workspace_id == env.workspace_id and j.input_id == env.input_id for j in jobs)
    assert jobs[0].user_identities == {"customer_id": "cust-1"}
    assert jobs[0].attributes() == {"i": "0", "via": "kaon"}  # the job carries the transformed event
    assert env.rows("SELECT p.output_id, p.mpid, p.next_attempt_ms FROM delivery_pending p JOIN delivery_jobs j"
                    " ON j.id = p.job_id WHERE j.connection_id = ? LIMIT 1", filtered) == [(output_id, mpid, NOW)]
    assert env.drops(filtered) == {events["noise"]: "filter:event_name"}
    assert env.stats(filtered) == {("queued", ""): 2, ("filtered", "filter:event_name"): 1}
    # Another connection of the same input sees every event.
    assert [event_name(j.event) for j in env.jobs(everything)] == ["keep", "noise", "keep-too"]
    assert env.drops(everything) == {}
    assert env.stats(everything) == {("queued", ""): 3}


def test_counters_add_up_across_slices(env: Env) -> None:
    _, connection = env.connect({"filters": {"event_types": {"allow": ["screen_view"]}}})
    env.send(batch("a", "b"))
    env.stage().run_once()
    env.send(batch("c"))
    env.stage().run_once()
    assert env.stats(connection) == {("filtered", "filter:event_type"): 3}
    assert env.jobs(connection) == []


class Crash(BaseException):
    """Stands for the process dying mid-slice (not an `Exception`, so the runner cannot handle it)."""


class CrashAfterFanout:
    name = "crash"

    def __init__(self) -> None:
        self.armed = True

    def run(self, work: Slice) -> None:
        if self.armed:
            raise Crash("after fan-out")


def test_jobs_and_drops_commit_with_the_events_or_not_at_all(env: Env) -> None:
    _, connection = env.connect({"filters": {"event_names": {"deny": ["noise"]}}})
    env.send(batch("keep", "noise"))
    crash = CrashAfterFanout()
    stage = env.stage([*default_steps(dedup_window_ms=DAY), crash])
    with pytest.raises(Crash):
        stage.run_once()
    for table in ("events", "delivery_jobs", "delivery_pending", "delivery_drops", "output_stats"):
        assert env.count(table) == 0, table
    assert OffsetStore(env.db.conn()).get("0") == 0
    crash.armed = False
    assert stage.run_once() == 1
    assert [event_name(j.event) for j in env.jobs(connection)] == ["keep"]
    assert list(env.drops(connection).values()) == ["filter:event_name"]
    assert env.stats(connection) == {("queued", ""): 1, ("filtered", "filter:event_name"): 1}


@pytest.mark.parametrize(("connection_enabled", "output_enabled"), [(False, True), (True, False)])
def test_a_disabled_connection_or_output_drops_with_reason_disabled(env: Env, connection_enabled: bool,
                                                                    output_enabled: bool) -> None:
    # Rules that would drop the event anyway: `disabled` is decided first.
    _, connection = env.connect({"filters": {"event_names": {"deny": ["a"]}}}, enabled=connection_enabled,
                                output_enabled=output_enabled)
    env.send(batch("a", "b"))
    env.stage().run_once()
    events = env.events()
    assert env.jobs(connection) == []
    assert env.drops(connection) == {events["a"]: "disabled", events["b"]: "disabled"}
    assert env.stats(connection) == {("filtered", "disabled"): 2}


def test_historical_batches_create_no_jobs(env: Env) -> None:
    _, connection = env.connect()
    env.send([batch("old-1", "old-2")], kind=KIND_MPARTICLE_HISTORICAL)
    env.send(batch("live"))
    env.stage().run_once()
    assert set(env.events()) == {"old-1", "old-2", "live"}  # stored, but not forwarded
    assert [event_name(j.event) for j in env.jobs(connection)] == ["live"]
    assert env.drops(connection) == {}
    assert env.stats(connection) == {("queued", ""): 1}


def test_an_input_without_connections_creates_nothing(env: Env) -> None:
    env.send(batch("a"))
    env.stage().run_once()
    assert env.events().keys() == {"a"}
    assert env.count("delivery_jobs") == env.count("delivery_drops") == env.count("output_stats") == 0
