"""The event store: processed events (newest-first listing, filtered, with a keyset cursor) and their batches."""

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import msgspec

from kaon.store.sql import Conn, chunks, contains_any, marks
from kaon.store.subject import Subject


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
# Rows per INSERT of events: 11 parameters each, well inside SQLite's 32,766 and PostgreSQL's 65,535.
_INSERT_ROWS = 500


class _BatchContext(msgspec.Struct):
    """The parts of a stored batch (`batches.body`) an event listing shows as the event's context."""

    ip: str | None = None
    device_info: dict[str, Any] | None = None
    application_info: dict[str, Any] | None = None
    context: dict[str, Any] | None = None

    def shown(self) -> dict[str, Any]:
        found: dict[str, Any] = {k: v for k, v in (("ip", self.ip), ("device_info", self.device_info),
                                                   ("application_info", self.application_info)) if v}
        found.update(self.context or {})
        return found


_batch_context = msgspec.json.Decoder(_BatchContext)


class EventFilters(msgspec.Struct, frozen=True, kw_only=True):
    """What an event listing keeps: each field given must match; the time range bounds the receive time."""

    mpid: int | None = None
    event_name: str | None = None
    event_type: str | None = None
    input_id: str | None = None
    since_ms: int | None = None  # inclusive
    until_ms: int | None = None  # exclusive

    def sql(self) -> tuple[str, list[object]]:
        where, args = "", list[object]()
        for column, value in (("mpid", self.mpid), ("event_name", self.event_name), ("event_type", self.event_type),
                              ("input_id", self.input_id)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        if self.since_ms is not None:
            where += " AND received_ms >= ?"
            args.append(self.since_ms)
        if self.until_ms is not None:
            where += " AND received_ms < ?"
            args.append(self.until_ms)
        return where, args


class EventStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def insert_batch(self, workspace_id: str, input_id: str, received_ms: int, body: bytes) -> int:
        cursor = self.conn.execute(
            "INSERT INTO batches (workspace_id, input_id, received_ms, body) VALUES (?, ?, ?, ?) RETURNING id",
            (workspace_id, input_id, received_ms, body),
        )
        return int(cursor.fetchone()[0])

    def insert_events(self, events: Sequence[StoredEvent]) -> list[int]:
        """Insert in order; returns the new ids, in the same order.

        A multi-row INSERT per chunk (one statement for many rows, both dialects). RETURNING lists rows in no
        promised order, but ids grow in insertion order within one statement (SQLite's rowid under its one
        writer, PostgreSQL's sequence as the statement evaluates its rows), so the sorted ids are in order.
        """
        ids: list[int] = []
        for chunk in chunks(events, _INSERT_ROWS):
            rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            params: list[object] = []
            for e in chunk:
                params += (e.workspace_id, e.input_id, e.batch_id, e.mpid, e.event_type, e.event_name,
                           e.source_message_id, e.timestamp_ms, e.received_ms, e.environment, e.body)
            cursor = self.conn.execute(
                "INSERT INTO events (workspace_id, input_id, batch_id, mpid, event_type, event_name,"
                f" source_message_id, timestamp_ms, received_ms, environment, body) VALUES {rows} RETURNING id",
                params)
            ids += sorted(int(row[0]) for row in cursor.fetchall())
        return ids

    def count(self, workspace_id: str) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM events WHERE workspace_id = ?", (workspace_id,)).fetchone()
        return int(row[0])

    def page(self, workspace_id: str, limit: int, after: tuple[int, int] | None = None, *,
             filters: EventFilters | None = None) -> list[dict[str, Any]]:
        """Newest first: by receive time, then id. `after` is the (received_ms, id) of the last event of the previous
        page, so events that arrive meanwhile never shift a page; `filters` narrow the list (all must hold)."""
        where, args = (filters or EventFilters()).sql()
        # One profile's events are few next to the workspace's: read them by `events_by_profile` and sort. Left to
        # itself (no ANALYZE statistics) SQLite walks `events_by_received` for the order, through every event.
        by_profile = filters is not None and filters.mpid is not None and self.conn.dialect.sqlite
        source = "events INDEXED BY events_by_profile" if by_profile else "events"
        sql = (
            "SELECT id, input_id, batch_id, mpid, event_type, event_name, source_message_id, timestamp_ms,"
            f" received_ms, environment, body FROM {source} WHERE workspace_id = ?{where}"
        )
        params: list[object] = [workspace_id, *args]
        if after is not None:
            # The redundant `<=` lets the index bound the scan; the OR then drops the rows already shown.
            sql += " AND received_ms <= ? AND (received_ms < ? OR id < ?)"
            params.extend((after[0], after[0], after[1]))
        # Otherwise `events_by_received` (workspace_id, received_ms; the rowid comes last) serves order and range.
        sql += " ORDER BY received_ms DESC, id DESC LIMIT ?"
        params.append(limit)
        out = []
        for (id_, input_id, batch_id, row_mpid, event_type, name, message_id, ts, received, env, body) in (
            self.conn.execute(sql, params)
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
        contexts = self.batch_contexts(workspace_id, {row["batch_id"] for row in out})
        for row in out:
            row["context"] = contexts.get(row["batch_id"])
        return out

    def batch_contexts(self, workspace_id: str, batch_ids: set[int]) -> dict[int, dict[str, Any]]:
        """The context of each batch (ip, device and application info, web context), by batch id."""
        ids, found = sorted(batch_ids), dict[int, dict[str, Any]]()
        for start in range(0, len(ids), 500):  # SQLite before 3.32 allows 999 parameters per statement
            chunk = ids[start:start + 500]
            rows = self.conn.execute(f"SELECT id, body FROM batches WHERE workspace_id = ? AND id IN ({marks(chunk)})",
                                     (workspace_id, *chunk))
            found.update({id_: _batch_context.decode(body).shown() for id_, body in rows})
        return found

    def ids_of(self, workspace_id: str, mpid: int) -> list[int]:
        """Ids of a profile's events, in order (a merge records those it moves)."""
        return [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM events WHERE workspace_id = ? AND mpid = ? ORDER BY id", (workspace_id, mpid))]

    def _range(self, workspace_id: str, after_id: int, max_id: int, min_ts: int | None,
               kinds: Mapping[str, Collection[str] | None] | None) -> tuple[str, tuple[object, ...]]:
        where = "workspace_id = ? AND id > ? AND id <= ?"
        args: tuple[object, ...] = (workspace_id, after_id, max_id)
        if min_ts is not None:
            where, args = where + " AND timestamp_ms > ?", (*args, min_ts)
        if kinds is None:
            return where, args
        if not kinds:
            return where + " AND event_type IN (NULL)", args
        # A name with a character outside printable ASCII is always read: SQL's lower() and Python's may differ.
        odd = "event_name GLOB '*[^ -~]*'" if self.conn.dialect.sqlite else "event_name ~ '[^ -~]'"
        clauses = []
        for kind, names in sorted(kinds.items()):
            if names is None:
                clauses.append("event_type = ?")
                args = (*args, kind)
            else:
                ordered = sorted(names)
                clauses.append(f"(event_type = ? AND (lower(event_name) IN ({marks(ordered)}) OR {odd}))")
                args = (*args, kind, *ordered)
        return where + f" AND ({' OR '.join(clauses)})", args

    def scan(self, workspace_id: str, *, after_id: int, max_id: int, min_ts: int | None, limit: int,
             kinds: Mapping[str, Collection[str] | None] | None = None) -> list[tuple[int, int, int, bytes]]:
        """(id, mpid, timestamp_ms, body) of events with `after_id < id <= max_id` (timed after `min_ts`; of the
        event types, and for a type given with names of those lower-cased names, in `kinds` when given), in id
        order: a backfill's pages over the stored history."""
        where, args = self._range(workspace_id, after_id, max_id, min_ts, kinds)
        return [(int(i), int(m), int(t), bytes(b) if not isinstance(b, bytes) else b) for i, m, t, b in
                self.conn.execute(f"SELECT id, mpid, timestamp_ms, body FROM events WHERE {where}"
                                  " AND mpid IS NOT NULL ORDER BY id LIMIT ?", (*args, limit))]

    def count_range(self, workspace_id: str, *, after_id: int, max_id: int, min_ts: int | None,
                    kinds: Mapping[str, Collection[str] | None] | None = None) -> int:
        where, args = self._range(workspace_id, after_id, max_id, min_ts, kinds)
        return int(self.conn.execute(f"SELECT count(*) FROM events WHERE {where}", args).fetchone()[0])

    def settle(self) -> None:
        """Until this transaction ends, no event is stored, and those being stored are committed first (PostgreSQL;
        SQLite has one writer): `last_id()` then splits the history exactly between a backfill and live work."""
        if not self.conn.dialect.sqlite:
            self.conn.execute("LOCK TABLE events IN SHARE MODE")

    def last_id(self) -> int:
        """The highest event id stored (0 when none): where a backfill's pages end."""
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def of_profile(self, workspace_id: str, mpid: int) -> list[tuple[int, int, bytes]]:
        """(id, timestamp_ms, body) of one profile's events in id order (rebuilding its state after an unmerge)."""
        return [(int(i), int(t), bytes(b) if not isinstance(b, bytes) else b) for i, t, b in self.conn.execute(
            "SELECT id, timestamp_ms, body FROM events WHERE workspace_id = ? AND mpid = ? ORDER BY id",
            (workspace_id, mpid))]

    def rekey(self, workspace_id: str, source: int, target: int, *, ids: Sequence[int] | None = None) -> int:
        """Give the source profile's events (all, or those of `ids` it still holds) to the target; rows moved.

        A merge moves a profile's whole history to the survivor; unmerge gives back the events the merge moved."""
        sql = "UPDATE events SET mpid = ? WHERE workspace_id = ? AND mpid = ?"
        if ids is None:
            return self.conn.execute(sql, (target, workspace_id, source)).rowcount
        return sum(self.conn.execute(f"{sql} AND id IN ({marks(chunk)})", (target, workspace_id, source, *chunk))
                   .rowcount for chunk in chunks(ids))

    def copy_window(self, workspace_id: str, source: int, target: int, start_ms: int, end_ms: int) -> int:
        """Copy the source profile's events timed within [start, end] to the target (an alias); rows copied."""
        return self.conn.execute(
            f"INSERT INTO events ({_COPIED}, mpid) SELECT {_COPIED}, ? FROM events"
            " WHERE workspace_id = ? AND mpid = ? AND timestamp_ms BETWEEN ? AND ? ORDER BY id",
            (target, workspace_id, source, start_ms, end_ms),
        ).rowcount


_COPIED = ("workspace_id, input_id, batch_id, event_type, event_name, source_message_id, timestamp_ms, received_ms,"
           " environment, body")


# Data subject requests (kaon.governance.dsr_*).
def with_events(conn: Conn, subject: Subject) -> Subject:
    """The subject with their profiles' events: ids, and the source message ids and batches those events came in
    (found while the events are there, so that owners may erase in any order)."""
    found: dict[int, tuple[str, int]] = {}
    mpids = sorted(subject.mpids)
    for chunk in chunks(mpids):
        found.update((int(i), (str(m), int(b))) for i, m, b in conn.execute(
            f"SELECT id, source_message_id, batch_id FROM events WHERE workspace_id = ? AND mpid IN ({marks(chunk)})",
            (subject.workspace_id, *chunk)))
    ids = sorted(found)
    return msgspec.structs.replace(
        subject, event_ids=ids, source_message_ids=sorted({m for m, _ in found.values()}),
        batch_ids=sorted({b for _, b in found.values()}))


def export_subject(conn: Conn, subject: Subject) -> dict[str, list[dict[str, Any]]]:
    """The person's events (by id), each with its body decoded (None when it does not decode)."""
    events = []
    for chunk in chunks(sorted(subject.event_ids)):
        events += [{"event_id": i, "mpid": None if m is None else str(m), "input_id": inp, "event_type": t,
                    "event_name": n, "timestamp_ms": ts, "received_ms": r, "environment": env,
                    "data": _decoded(body)} for i, m, inp, t, n, ts, r, env, body in conn.execute(
            "SELECT id, mpid, input_id, event_type, event_name, timestamp_ms, received_ms, environment, body"
            f" FROM events WHERE workspace_id = ? AND id IN ({marks(chunk)}) ORDER BY id",
            (subject.workspace_id, *chunk))]
    return {"events": events}


def _decoded(raw: bytes) -> Any:
    try:
        return _json.decode(raw)
    except msgspec.DecodeError:
        return None


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the person's events and the batches they came in or that name them (an identity value, an mpid)."""
    ws, d = subject.workspace_id, conn.dialect
    counts = {"batches": 0, "events": 0}
    for chunk in chunks(subject.batch_ids):
        counts["batches"] += conn.execute(f"DELETE FROM batches WHERE workspace_id = ? AND id IN ({marks(chunk)})",
                                          (ws, *chunk)).rowcount
    match, args = contains_any(d, f"lower({d.text('body')})", subject.needles() + subject.mpid_needles())
    counts["batches"] += conn.execute(f"DELETE FROM batches WHERE workspace_id = ? AND {match}", (ws, *args)).rowcount
    for chunk in chunks(subject.event_ids):
        counts["events"] += conn.execute(f"DELETE FROM events WHERE workspace_id = ? AND id IN ({marks(chunk)})",
                                         (ws, *chunk)).rowcount
    return counts

def input_of_event(conn: Conn, workspace_id: str, event_id: int) -> str | None:
    """The input an event of the workspace arrived through (None: no such event)."""
    row = conn.execute("SELECT input_id FROM events WHERE workspace_id = ? AND id = ?",
                       (workspace_id, event_id)).fetchone()
    return None if row is None else str(row[0])
