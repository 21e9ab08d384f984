"""The catalog step over a real SQLite log and store: types seen, counts, per input/environment, first/last seen."""

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from kaon.governance import catalog_store
from kaon.governance.catalog_aggregate import point_id
from kaon.log.base import KIND_MPARTICLE_BATCH, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.catalog import ObserveCatalog
from kaon.pipeline.normalize import Normalize
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_steps
from kaon.pipeline.work import Slice
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sql import Conn, Dialect
from kaon.store.tx import transaction

WS = "ws_cat"
NOW = 1_800_000_000_000
DAY = 86_400_000
PLAY = point_id(("custom_event", "Play", "media"))


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.db = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}"))
        self.writer = SqliteLogWriter(tmp_path / "log", "0")
        self.reader = SqliteLogReader(tmp_path / "log")
        self.clock = [NOW]

    def send(self, *events: dict[str, Any], input_id: str = "in_web", environment: str = "production",
             at: int = NOW, **fields: Any) -> None:
        body = json.dumps({"environment": environment, "events": list(events), **fields}).encode()
        self.writer.append([LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=WS, input_id=input_id,
                                     received_ms=at, ip="10.0.0.1", body=body)])

    def process(self, steps: Any = None) -> None:
        stage = ProcessStage(self.db, self.reader, steps or default_steps(dedup_window_ms=DAY),
                             clock=lambda: self.clock[0])
        while stage.run_once():
            pass

    def close(self) -> None:
        self.writer.close()
        self.reader.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    found = World(tmp_path)
    yield found
    found.close()


def play(message_id: str, **attrs: Any) -> dict[str, Any]:
    return {"event_type": "custom_event", "data": {"event_name": "Play", "custom_event_type": "media",
                                                   "source_message_id": message_id, "custom_attributes": attrs}}


def attribute(point: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in point["attributes"] if a["name"] == name)


def test_types_counts_and_first_last_seen_per_input_and_environment(world: World) -> None:
    world.send(play("m1", song="Intro", secs=30), at=NOW + 10)
    world.send(play("m2", song="Outro", secs="45"), play("m3", song=None), input_id="in_ios", at=NOW + 20)
    world.send(play("m4", secs=1.5), environment="development", at=NOW + 5)
    world.send(play("m1", song="Intro", secs=30), at=NOW + 30)  # a duplicate message: dropped, not counted
    world.process()

    conn = world.db.conn()
    point = catalog_store.point(conn, WS, PLAY)
    assert (point["type"], point["name"], point["custom_event_type"]) == ("custom_event", "Play", "media")
    assert (point["count"], point["first_seen_unixtime_ms"], point["last_seen_unixtime_ms"]) == (4, NOW + 5, NOW + 20)
    assert {(s["input_id"], s["environment"]): (s["count"], s["first_seen_unixtime_ms"], s["last_seen_unixtime_ms"])
            for s in point["seen"]} == {
        ("in_web", "production"): (1, NOW + 10, NOW + 10),
        ("in_ios", "production"): (2, NOW + 20, NOW + 20),
        ("in_web", "development"): (1, NOW + 5, NOW + 5),
    }
    secs = attribute(point, "secs")
    assert secs["types"] == ["string", "number"]
    assert secs["count"] == 3
    assert {(s["input_id"], s["environment"]): s["types"] for s in secs["seen"]} == {
        ("in_web", "production"): ["number"], ("in_ios", "production"): ["string"],
        ("in_web", "development"): ["number"]}
    song = attribute(point, "song")
    assert song["types"] == ["string", "null"]
    assert sorted(song["examples"]) == ["Intro", "Outro"]

    ios = catalog_store.point(conn, WS, PLAY, input_id="in_ios")
    assert ios["count"] == 2
    listed = catalog_store.list_points(conn, WS, environment="development")
    assert [(p["id"], p["count"], p["input_ids"]) for p in listed] == [(PLAY, 1, ["in_web"])]


def test_user_attributes_identity_types_and_the_list_filters(world: World) -> None:
    world.send({"event_type": "screen_view", "data": {"screen_name": "Home"}},
               user_attributes={"plan": "pro", "email": "ann@example.com"},
               user_identities={"customer_id": "cust-1", "email": "ann@example.com"})
    world.process()
    conn = world.db.conn()
    listed = {p["type"]: p for p in catalog_store.list_points(conn, WS)}
    assert set(listed) == {"screen_view", "user_attributes", "user_identities"}
    assert listed["user_attributes"]["attribute_count"] == 2
    identities = catalog_store.point(conn, WS, listed["user_identities"]["id"])
    assert [(a["name"], a["types"], a["examples"]) for a in identities["attributes"]] == [
        ("customer_id", ["string"], []), ("email", ["string"], [])]
    users = catalog_store.point(conn, WS, listed["user_attributes"]["id"])
    assert attribute(users, "email")["examples"] == ["<identity>"]
    assert [p["name"] for p in catalog_store.list_points(conn, WS, q="hom")] == ["Home"]
    assert [p["type"] for p in catalog_store.list_points(conn, WS, q="plan")] == ["user_attributes"]
    assert [p["type"] for p in catalog_store.list_points(conn, WS, type_="screen_view")] == ["screen_view"]
    assert catalog_store.list_points(conn, WS, input_id="other") == []


def test_no_person_value_is_kept_anywhere_in_the_catalog(world: World) -> None:
    world.send(play("m1", note="mail ann@example.com", phone="+1 555 123 4567", ref="cust-1"),
               user_attributes={"first_name": "Annabel", "ref": "cust-1"},
               user_identities={"customer_id": "cust-1", "email": "ann@example.com"})
    world.process()
    dump = "\n".join(str(row) for table in ("catalog_points", "catalog_series", "catalog_types",
                                                                  "catalog_examples")
                     for row in world.db.conn().execute(f"SELECT * FROM {table}"))
    for secret in ("ann@example.com", "555 123", "cust-1", "Annabel"):
        assert secret not in dump


def test_at_most_three_examples_across_slices_and_forget_values(world: World) -> None:
    for i in range(6):
        world.send(play(f"m{i}", song=f"song {i}"))
        world.process()
    conn = world.db.conn()
    assert attribute(catalog_store.point(conn, WS, PLAY), "song")["examples"] == ["song 0", "song 1", "song 2"]
    assert catalog_store.forget_values(conn, WS, {"song 1", "unrelated"}) == 1
    assert attribute(catalog_store.point(conn, WS, PLAY), "song")["examples"] == ["song 0", "song 2"]


def test_forget_values_removes_truncated_examples_of_a_long_value(world: World) -> None:
    long_value = "a rather long free text attribute value, written by the person themselves"
    world.send(play("m1", bio=long_value))
    world.process()
    conn = world.db.conn()
    assert attribute(catalog_store.point(conn, WS, PLAY), "bio")["examples"][0].endswith("…")
    assert catalog_store.forget_values(conn, WS, {long_value}) == 1
    assert attribute(catalog_store.point(conn, WS, PLAY), "bio")["examples"] == []


class CountingConnection:
    """A connection that counts the statements it is asked to run (executemany counts once)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.calls: list[str] = []

    @property
    def dialect(self) -> Dialect:
        return self.conn.dialect

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.calls.append(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        self.calls.append(sql)
        return self.conn.executemany(sql, rows)


def test_a_slice_is_written_with_a_few_statements_whatever_its_size(world: World) -> None:
    for i in range(100):
        world.send(*[play(f"m{i}-{j}", song=f"s{j}", secs=j) for j in range(10)],
                   user_attributes={"plan": "pro"}, input_id=f"in_{i % 3}")
    conn = world.db.conn()
    counting = CountingConnection(conn)
    step = ObserveCatalog()
    first = Slice(tx=cast(sqlite3.Connection, counting), entries=world.reader.read("0", 0, 50), now_ms=NOW)
    with transaction(conn):
        Normalize().run(first)
        counting.calls.clear()
        step.run(first)
    # The stored examples; the slice's points (read, then the new ones added); its series (read, the new ones
    # added and read back, their tallies started); the tallies added to; the types (read, then the new ones
    # added); the examples: eleven statements for 500 events.
    assert [sql.split()[0:3] for sql in counting.calls] == [
        ["SELECT", "workspace_id,", "point_id,"], ["SELECT", "point_id", "FROM"], ["INSERT", "INTO", "catalog_points"],
        ["SELECT", "id,", "point_id,"], ["INSERT", "INTO", "catalog_series"], ["SELECT", "id,", "point_id,"],
        ["INSERT", "INTO", "catalog_tallies"], ["UPDATE", "catalog_tallies", "SET"],
        ["SELECT", "point_id,", "input_id,"], ["INSERT", "INTO", "catalog_types"],
        ["INSERT", "INTO", "catalog_examples"]]
    assert catalog_store.point(conn, WS, PLAY)["count"] == 500
    # The next slice confirms what the first one added (one read each for points, series and types); from then
    # on, with nothing new, a slice adds to the tallies with one statement (`plan` has one value, already shown).
    for n, after in enumerate((50, 75), start=1):
        work = Slice(tx=cast(sqlite3.Connection, counting), entries=world.reader.read("0", after, 25), now_ms=NOW + n)
        with transaction(conn):
            Normalize().run(work)
            counting.calls.clear()
            step.run(work)
    assert [sql.split()[0:3] for sql in counting.calls] == [["UPDATE", "catalog_tallies", "SET"]]
    assert catalog_store.point(conn, WS, PLAY)["count"] == 1000


def test_two_process_stages_writing_at_once_keep_exact_counts_and_types(world: World, tmp_path: Path) -> None:
    # Two stages (each with its own step and caches, as two processes would have) drain the same two log
    # partitions at once; each slice is claimed by one of them. New points, series and types race.
    second = SqliteLogWriter(tmp_path / "log", "1")
    for i in range(150):
        for writer, part in ((world.writer, "a"), (second, "b")):
            body = json.dumps({"environment": "production", "events": [
                play(f"{part}{i}-{j}", song=f"s{j}", secs=j if (i + j) % 3 else str(j)) for j in range(4)]})
            writer.append([LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=WS, input_id=f"in_{i % 2}",
                                    received_ms=NOW + i, ip="10.0.0.1", body=body.encode())])
    second.close()

    def drain() -> None:
        stage = ProcessStage(world.db, SqliteLogReader(tmp_path / "log"), default_steps(dedup_window_ms=DAY),
                             slice_size=7, clock=lambda: NOW)
        while stage.run_once():
            pass

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    point = catalog_store.point(world.db.conn(), WS, PLAY)
    assert point["count"] == 2 * 150 * 4
    assert {(s["input_id"], s["count"]) for s in point["seen"]} == {("in_0", 600), ("in_1", 600)}
    assert attribute(point, "secs")["types"] == ["string", "number"]
    assert attribute(point, "song")["count"] == 1200


def test_a_series_removed_under_the_cache_fails_the_slice_once_and_the_retry_counts_exactly(world: World) -> None:
    steps = default_steps(dedup_window_ms=DAY)  # one step instance, so its cached series ids carry over
    world.send(play("m1", song="a"))
    world.process(steps)
    world.send(play("m2", song="b"))
    world.process(steps)  # this slice read the series back: their ids are now cached
    conn = world.db.conn()
    with transaction(conn):  # something removes the catalog's rows behind the step's back
        conn.execute("DELETE FROM catalog_tallies")
        conn.execute("DELETE FROM catalog_series")
    world.send(play("m3", song="c"), play("m4", song="d"))
    world.process(steps)
    assert catalog_store.point(conn, WS, PLAY)["count"] == 2  # the two events after the removal, once each
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 4
    assert conn.execute("SELECT COUNT(*) FROM rejections").fetchone()[0] == 0  # nothing PROCESS_FAILED
