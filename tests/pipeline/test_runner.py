"""The process stage over a real SQLite log and store: exactly once, atomic per slice, retried after a crash."""

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kaon.log.base import KIND_MPARTICLE_BATCH, KIND_MPARTICLE_BULK, KIND_REJECTION, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.model.events import event_name
from kaon.pipeline.dedup import Dedup
from kaon.pipeline.normalize import Normalize
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.step import Step
from kaon.pipeline.steps import default_steps
from kaon.pipeline.store_events import StoreEvents
from kaon.pipeline.work import Slice
from kaon.store.db import Database, DatabaseUrl
from kaon.store.metrics import MetricsStore
from kaon.store.offsets import OffsetStore

WS = "ws_test"
INPUT = "in_test"
NOW = 1_800_000_000_000
DAY = 86_400_000


def batch(*names: str, message_ids: list[str] | None = None) -> bytes:
    events = []
    for i, name in enumerate(names):
        data: dict[str, Any] = {"event_name": name, "custom_event_type": "other"}
        if message_ids is not None:
            data["source_message_id"] = message_ids[i]
        events.append({"event_type": "custom_event", "data": data})
    return json.dumps({"environment": "production", "events": events}).encode()


def entry(body: bytes, kind: str = KIND_MPARTICLE_BATCH, workspace: str = WS) -> LogEntry:
    return LogEntry(kind=kind, workspace_id=workspace, input_id=INPUT, received_ms=NOW, ip="1.2.3.4", body=body)


@dataclass
class Env:
    db: Database
    writer: SqliteLogWriter
    reader: SqliteLogReader
    clock_ms: list[int]

    def stage(self, steps: list[Step] | None = None, **kw: Any) -> ProcessStage:
        return ProcessStage(self.db, self.reader, steps or default_steps(dedup_window_ms=DAY),
                            clock=lambda: self.clock_ms[0], **kw)

    def names(self, workspace: str = WS) -> list[str]:
        rows = self.db.conn().execute(
            "SELECT event_name FROM events WHERE workspace_id = ? ORDER BY id", (workspace,)).fetchall()
        return [r[0] for r in rows]

    def count(self, table: str) -> int:
        return int(self.db.conn().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def stat(self, metric: str, reason: str = "") -> int:
        row = self.db.conn().execute(
            "SELECT COALESCE(SUM(count), 0) FROM input_stats WHERE metric = ? AND reason = ?", (metric, reason)
        ).fetchone()
        return int(row[0])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    db = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}"))
    writer = SqliteLogWriter(tmp_path / "log", "0")
    reader = SqliteLogReader(tmp_path / "log")
    yield Env(db, writer, reader, [NOW])
    writer.close()
    reader.close()


def test_processes_each_entry_once_and_records_the_offset(env: Env) -> None:
    env.writer.append([entry(batch("a", "b")), entry(batch("c"))])
    stage = env.stage()
    assert stage.run_once() == 2
    assert env.names() == ["a", "b", "c"]
    assert stage.run_once() == 0
    # A new stage (a restart) continues from the stored offset.
    assert env.stage().run_once() == 0
    assert env.names() == ["a", "b", "c"]
    assert OffsetStore(env.db.conn()).get("0") == env.reader.read("0", 0, 10)[-1].seq
    assert env.stat("events_received") == 3
    assert env.stat("events_processed") == 3
    assert env.stat("batches_received") == 2
    env.writer.append([entry(batch("d"))])
    assert stage.run_once() == 1
    assert env.names() == ["a", "b", "c", "d"]


def test_slices_are_bounded_and_drain_processes_everything(env: Env) -> None:
    env.writer.append([entry(batch(f"e{i}")) for i in range(10)])
    stage = env.stage(slice_size=3)
    committed: list[tuple[str, int]] = []
    stage.on_committed = lambda p, s: committed.append((p, s))
    assert stage.run_once() == 3
    assert env.names() == ["e0", "e1", "e2"]
    stage.drain(deadline_ms=NOW + 1)
    assert env.names() == [f"e{i}" for i in range(10)]
    assert len(committed) == 4
    assert committed[-1][1] == env.reader.read("0", 0, 100)[-1].seq


def test_bulk_entries_give_one_batch_each(env: Env) -> None:
    bulk = b"[" + batch("x") + b"," + batch("y", "z") + b"]"
    env.writer.append([entry(bulk, kind=KIND_MPARTICLE_BULK)])
    env.stage().run_once()
    assert env.names() == ["x", "y", "z"]
    assert env.count("batches") == 2


class Crash(BaseException):
    """Stands for the process dying mid-slice: not an `Exception`, so the runner cannot handle it."""


class Boom:
    """A real step that crashes while armed (a crash between steps)."""

    name = "boom"

    def __init__(self) -> None:
        self.armed = True
        self.runs = 0

    def run(self, work: Slice) -> None:
        self.runs += 1
        if self.armed:
            raise Crash("crash between steps")


@pytest.mark.parametrize("position", [1, 2, 3])
def test_crash_between_steps_leaves_nothing_and_retry_processes_once(env: Env, position: int) -> None:
    env.writer.append([entry(batch("a", "b", message_ids=["m1", "m2"])), entry(batch("c"))])
    boom = Boom()
    steps: list[Step] = [Normalize(), Dedup(DAY), StoreEvents()]
    steps.insert(position, boom)
    stage = env.stage(steps)
    with pytest.raises(Crash, match="crash between steps"):
        stage.run_once()
    # No partial effects: no events, no dedup marks, no counters, offset unmoved.
    assert env.names() == []
    assert env.count("message_ids") == 0
    assert env.count("batches") == 0
    assert env.count("input_stats") == 0
    assert OffsetStore(env.db.conn()).get("0") == 0
    boom.armed = False
    assert stage.run_once() == 2
    assert env.names() == ["a", "b", "c"]  # dedup marks from the failed attempt did not drop them
    assert stage.run_once() == 0
    assert env.names() == ["a", "b", "c"]
    assert env.stat("events_duplicate") == 0
    assert env.stat("events_processed") == 3


def test_same_message_id_is_stored_once_within_the_window(env: Env) -> None:
    env.writer.append([entry(batch("a", message_ids=["dup"]))])
    stage = env.stage()
    stage.run_once()
    env.writer.append([entry(batch("a-again", message_ids=["dup"]))])
    env.clock_ms[0] = NOW + DAY - 1
    stage.run_once()
    assert env.names() == ["a"]
    assert env.stat("events_duplicate") == 1
    # After the window the id is new again.
    env.writer.append([entry(batch("a-later", message_ids=["dup"]))])
    env.clock_ms[0] = NOW + 2 * DAY + 1
    stage.run_once()
    assert env.names() == ["a", "a-later"]


def test_duplicates_inside_one_batch_and_across_workspaces(env: Env) -> None:
    env.writer.append([
        entry(batch("a", "b", message_ids=["same", "same"])),
        entry(batch("other-ws", message_ids=["same"]), workspace="ws_other"),
    ])
    env.stage().run_once()
    assert env.names() == ["a"]
    assert env.names("ws_other") == ["other-ws"]
    assert env.stat("events_duplicate") == 1


def test_generated_message_ids_are_stable_so_a_rerun_is_deduplicated(env: Env) -> None:
    env.writer.append([entry(batch("no-id"))])
    env.stage().run_once()
    stored = env.db.conn().execute("SELECT source_message_id FROM events").fetchall()
    assert len(stored) == 1 and stored[0][0]
    # Reprocess the same log entry from offset 0 (e.g. offsets restored from an old backup).
    OffsetStore(env.db.conn()).set("0", 0)
    env.stage().run_once()
    assert env.names() == ["no-id"]
    assert env.stat("events_duplicate") == 1


def test_rejection_records_become_rows_and_counters(env: Env) -> None:
    record = {"status": 400, "code": "INVALID_JSON", "message": "Malformed JSON", "count": 3, "sample": "{"}
    env.writer.append([entry(json.dumps(record).encode(), kind=KIND_REJECTION)])
    env.stage().run_once()
    rows = MetricsStore(env.db.conn()).rejections(WS, 10)
    assert [(r["code"], r["count"], r["body_sample"], r["input_id"]) for r in rows] == [
        ("INVALID_JSON", 3, "{", INPUT)]
    assert env.stat("rejected", "INVALID_JSON") == 3
    assert env.names() == []


def test_undecodable_entry_is_recorded_not_dropped_and_does_not_block_others(env: Env) -> None:
    env.writer.append([entry(b"{not json"), entry(batch("after"))])
    env.stage().run_once()
    assert env.names() == ["after"]
    rows = MetricsStore(env.db.conn()).rejections(WS, 10)
    assert [r["code"] for r in rows] == ["PROCESS_INVALID_JSON"]
    assert rows[0]["body_sample"] == "{not json"
    assert env.stat("rejected", "PROCESS_INVALID_JSON") == 1


def test_an_unstorable_entry_does_not_block_the_partition(env: Env) -> None:
    huge = json.dumps({"mpid": 2**64 - 1, "events": [
        {"event_type": "custom_event", "data": {"event_name": "huge"}}]}).encode()
    env.writer.append([entry(huge)])
    env.writer.append([entry(batch("after"))])
    stage = env.stage(slice_size=1)
    for _ in range(3):
        with contextlib.suppress(OverflowError):
            stage.run_once()
    assert "after" in env.names()


class FailsOn:
    """A real step with a bug that only one entry's data triggers."""

    name = "fails_on"

    def __init__(self, event_name: str) -> None:
        self.event_name = event_name

    def run(self, work: Slice) -> None:
        for item in work.batches:
            if any(event_name(e) == self.event_name for e in item.batch.events):
                raise ValueError(f"cannot handle {self.event_name}")


def test_an_entry_a_step_cannot_handle_is_recorded_not_dropped_and_the_rest_proceed(env: Env) -> None:
    env.writer.append([entry(batch("before")), entry(batch("poison")), entry(batch("after"))])
    stage = env.stage([Normalize(), FailsOn("poison"), Dedup(DAY), StoreEvents()])
    assert stage.run_once() == 3
    assert env.names() == ["before", "after"]
    row = env.db.conn().execute("SELECT status, code, message, body FROM rejections").fetchone()
    assert row[:2] == (500, "PROCESS_FAILED")
    assert "cannot handle poison" in row[2]
    assert b'"poison"' in bytes(row[3])  # the whole accepted body is kept where a person can see it
    assert OffsetStore(env.db.conn()).get("0") == 3
