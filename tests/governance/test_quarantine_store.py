"""The quarantine's owner: rows added, paged, read for replay, taken; a data subject's rows erased (both dialects)."""

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kaon.governance import quarantine_store
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sql import POSTGRESQL_DIALECT, Conn, Cursor, Dialect
from kaon.store.subject import Subject
from support.postgres import running_cluster

WS, OTHER = "ws_1", "ws_2"


def _conn(tmp_path: Path) -> Conn:
    return Database(DatabaseUrl.parse("sqlite:///" + str(tmp_path / "kaon.db"))).conn()


def _batch(*, email: str | None = None, mpid: int | None = None, messages: Iterable[str] = ()) -> bytes:
    body: dict[str, Any] = {"environment": "production",
                            "events": [{"event_type": "custom_event", "data": {"event_name": "play",
                                                                               "source_message_id": m}}
                                       for m in messages]}
    if email is not None:
        body["user_identities"] = {"email": email}
    if mpid is not None:
        body["mpid"] = mpid
    return json.dumps(body).encode()


def _add(conn: Conn, batch: bytes, ws: str = WS, reasons: list[dict[str, Any]] | None = None) -> int:
    return quarantine_store.add(conn, workspace_id=ws, input_id="in_1", plan_id="p", plan_version=1, received_ms=5,
                                now=7, reasons=reasons or [{"reason": "unplanned_event"}], blocked_events=[0],
                                batch=batch)


def _alice(ws: str = WS) -> Subject:
    return Subject(workspace_id=ws, mpids={1001}, identities={("email", "alice@x.com")}, attribute_values=set(),
                   event_ids=[1], source_message_ids=["m-alice"])


def _people(conn: Conn) -> tuple[set[int], set[int]]:
    """Alice's rows (by identity value, by mpid, by event, by a reason) and everyone else's."""
    alice = {_add(conn, _batch(email="Alice@x.com", messages=["m-0"])),
             _add(conn, _batch(mpid=1001, messages=["m-1"])),
             _add(conn, _batch(messages=["m-2", "m-alice"])),
             _add(conn, _batch(messages=["m-3"]), reasons=[{"reason": "unplanned_event", "keys": ["alice@x.com"]}])}
    others = {_add(conn, _batch(email="bob@x.com", mpid=2002, messages=["m-bob"])),
              _add(conn, _batch(email="malice@x.com", mpid=10012, messages=["m-alice-2"])),
              _add(conn, _batch(email="alice@x.com", mpid=1001, messages=["m-alice"]), ws=OTHER)}
    return alice, others


def _ids(conn: Conn) -> set[int]:
    return {int(r[0]) for r in conn.execute("SELECT id FROM quarantine")}


def test_erase_subject_removes_the_persons_batches_and_keeps_everyone_elses(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    alice, others = _people(conn)
    assert quarantine_store.erase_subject(conn, _alice()) == {"quarantine": len(alice)}
    assert _ids(conn) == others
    assert quarantine_store.erase_subject(conn, _alice()) == {"quarantine": 0}


def test_erase_subject_without_events_matches_only_by_values(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    by_event = _add(conn, _batch(messages=["m-alice"]))
    subject = _alice()
    subject.source_message_ids = []
    assert quarantine_store.erase_subject(conn, subject) == {"quarantine": 0}
    assert _ids(conn) == {by_event}


def test_rows_are_paged_newest_first_read_for_replay_and_taken(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    ids = [_add(conn, _batch(messages=[f"m{i}"])) for i in range(5)]
    _add(conn, _batch(), ws=OTHER)
    assert quarantine_store.count(conn, WS) == 5
    assert [r[0] for r in quarantine_store.page(conn, WS, 2, None)] == [ids[4], ids[3]]
    assert [r[0] for r in quarantine_store.page(conn, WS, 10, ids[3])] == [ids[2], ids[1], ids[0]]
    assert [r[0] for rows in quarantine_store.for_replay(conn, WS, None) for r in rows] == ids
    assert [r[0] for rows in quarantine_store.for_replay(conn, WS, [ids[3], ids[1]]) for r in rows] == [ids[1],
                                                                                                          ids[3]]
    quarantine_store.mark_replay_requested(conn, [ids[0]], 99)
    assert [r[-1] for r in quarantine_store.page(conn, WS, 10, None)] == [None, None, None, None, 99]
    assert quarantine_store.take(conn, WS, ids[0])
    assert not quarantine_store.take(conn, WS, ids[0])
    assert not quarantine_store.take(conn, OTHER, ids[1])
    assert quarantine_store.count(conn, WS) == 4


class _Postgres:
    """Just enough of a PostgreSQL `Conn` for one owner's statements (`?` becomes `%s`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @property
    def dialect(self) -> Dialect:
        return POSTGRESQL_DIALECT

    @property
    def in_transaction(self) -> bool:
        return False

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.conn.execute(re.sub(r"\?", "%s", sql), parameters)  # type: ignore[return-value]

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self.conn.cursor()
        cursor.executemany(re.sub(r"\?", "%s", sql), list(parameters))
        return cursor  # type: ignore[return-value]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Conn]:
    with running_cluster() as cluster, psycopg.connect(cluster.dsn(), autocommit=True) as raw:
        raw.execute("""CREATE TABLE quarantine (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, workspace_id TEXT NOT NULL, input_id TEXT NOT NULL,
            plan_id TEXT NOT NULL, plan_version INTEGER NOT NULL, received_ms BIGINT NOT NULL,
            quarantined_ms BIGINT NOT NULL, reasons TEXT NOT NULL, blocked_events TEXT NOT NULL, batch BYTEA NOT NULL,
            replay_requested_ms BIGINT)""")
        yield _Postgres(raw)


def test_erase_subject_runs_the_same_on_postgresql(postgres: Conn) -> None:
    postgres.execute("DELETE FROM quarantine")
    alice, others = _people(postgres)
    assert quarantine_store.erase_subject(postgres, _alice()) == {"quarantine": len(alice)}
    assert _ids(postgres) == others
