"""The event store: processed events (newest-first listing with a cursor) and their batches' context."""

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from kaon.types import EventId


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A row to insert: the event's indexed columns and its canonical JSON body."""

    workspace_id: str
    input_id: str
    batch_id: int
    mpid: int | None
    event_type: str
    event_name: str | None
    source_message_id: str
    timestamp_ms: int
    received_ms: int
    environment: str
    body: bytes


_json = msgspec.json.Decoder()


class EventStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def insert_batch(self, workspace_id: str, input_id: str, received_ms: int, body: bytes) -> int:
        cursor = self.conn.execute(
            "INSERT INTO batches (workspace_id, input_id, received_ms, body) VALUES (?, ?, ?, ?)",
            (workspace_id, input_id, received_ms, body),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def insert_events(self, events: Sequence[StoredEvent]) -> list[int]:
        """Insert in order; returns the new ids (one statement per row: executemany gives no ids)."""
        ids = []
        for e in events:
            cursor = self.conn.execute(
                "INSERT INTO events (workspace_id, input_id, batch_id, mpid, event_type, event_name,"
                " source_message_id, timestamp_ms, received_ms, environment, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (e.workspace_id, e.input_id, e.batch_id, e.mpid, e.event_type, e.event_name,
                 e.source_message_id, e.timestamp_ms, e.received_ms, e.environment, e.body),
            )
            assert cursor.lastrowid is not None
            ids.append(cursor.lastrowid)
        return ids

    def count(self, workspace_id: str) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM events WHERE workspace_id = ?", (workspace_id,)).fetchone()
        return int(row[0])

    def page(self, workspace_id: str, limit: int, before: EventId | None, mpid: int | None = None,
             ) -> list[dict[str, Any]]:
        """Newest first; `before` is the id of the last event of the previous page; `mpid`: one profile's."""
        sql = (
            "SELECT id, input_id, batch_id, mpid, event_type, event_name, source_message_id, timestamp_ms,"
            " received_ms, environment, body FROM events WHERE workspace_id = ?"
        )
        args: list[object] = [workspace_id]
        if mpid is not None:
            sql += " AND mpid = ?"
            args.append(mpid)
        if before is not None:
            sql += " AND id < ?"
            args.append(before)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        out = []
        for (id_, input_id, batch_id, row_mpid, event_type, name, message_id, ts, received, env, body) in (
            self.conn.execute(sql, args)
        ):
            event = _json.decode(body)
            out.append({
                "id": id_,
                "event_type": event_type,
                "event_name": name,
                "source_message_id": message_id,
                "timestamp_unixtime_ms": ts,
                "received_unixtime_ms": received,
                "input_id": input_id,
                "batch_id": batch_id,
                "mpid": None if row_mpid is None else str(row_mpid),
                "environment": env,
                "data": event.get("data", {}),
            })
        return out
