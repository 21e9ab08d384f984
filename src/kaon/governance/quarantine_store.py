"""The `quarantine` table's owner: blocked batches with their reasons, paged, read for replay, taken, erased."""

from collections.abc import Iterator
from typing import Any

import msgspec

from kaon.store.sql import Conn, chunks, contains_any, marks
from kaon.store.subject import Subject

_json = msgspec.json.Encoder()
COLUMNS = ("id, input_id, plan_id, plan_version, received_ms, quarantined_ms, reasons, blocked_events, batch,"
           " replay_requested_ms")
_REPLAY_COLUMNS = "id, input_id, received_ms, blocked_events, batch"
_LAST_ID = 2**63 - 1
_READ = 500  # rows per read for replay


def add(conn: Conn, *, workspace_id: str, input_id: str, plan_id: str, plan_version: int,
        received_ms: int, now: int, reasons: list[dict[str, Any]], blocked_events: list[int], batch: bytes) -> int:
    cursor = conn.execute(
        "INSERT INTO quarantine (workspace_id, input_id, plan_id, plan_version, received_ms, quarantined_ms,"
        " reasons, blocked_events, batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (workspace_id, input_id, plan_id, plan_version, received_ms, now, _json.encode(reasons).decode(),
         _json.encode(blocked_events).decode(), batch))
    return int(cursor.fetchone()[0])


def take(conn: Conn, workspace_id: str, quarantine_id: int) -> bool:
    """Remove a row whose replay is being applied; False when it was already applied (or never existed)."""
    cursor = conn.execute("DELETE FROM quarantine WHERE id = ? AND workspace_id = ?", (quarantine_id, workspace_id))
    return cursor.rowcount == 1


def page(conn: Conn, workspace_id: str, limit: int, before: int | None) -> list[tuple[Any, ...]]:
    """Up to `limit` rows (`COLUMNS`), newest first, with ids below `before` (None: from the newest)."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM quarantine WHERE workspace_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (workspace_id, before if before is not None else _LAST_ID, limit)).fetchall()


def count(conn: Conn, workspace_id: str) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM quarantine WHERE workspace_id = ?", (workspace_id,)).fetchone()[0])


def for_replay(conn: Conn, workspace_id: str, ids: list[int] | None) -> Iterator[list[tuple[Any, ...]]]:
    """(id, input_id, received_ms, blocked_events, batch) of these rows (None: every row), a few hundred at a time."""
    select = f"SELECT {_REPLAY_COLUMNS} FROM quarantine WHERE workspace_id = ?"
    if ids is not None:
        for chunk in chunks(ids, _READ):
            yield conn.execute(f"{select} AND id IN ({marks(chunk)}) ORDER BY id", (workspace_id, *chunk)).fetchall()
        return
    after = 0
    while rows := conn.execute(f"{select} AND id > ? ORDER BY id LIMIT ?", (workspace_id, after, _READ)).fetchall():
        yield rows
        after = rows[-1][0]


def mark_replay_requested(conn: Conn, ids: list[int], now: int) -> None:
    conn.executemany("UPDATE quarantine SET replay_requested_ms = ? WHERE id = ?", [(now, i) for i in ids])


def _carrying_messages(conn: Conn, count_of: int) -> str:
    """SQL true when the row's stored batch holds an event whose source message id is one of the next
    `count_of` parameters (the one JSON walk over `batch`, in each dialect)."""
    if conn.dialect.sqlite:
        return ("EXISTS (SELECT 1 FROM json_each(CAST(quarantine.batch AS TEXT), '$.events') AS e"
                f" WHERE json_extract(e.value, '$.data.source_message_id') IN ({marks(range(count_of))}))")
    # Lax mode: a batch without `events` (or with a non-object event) yields nothing instead of an error.
    return ("EXISTS (SELECT 1 FROM jsonb_path_query(convert_from(quarantine.batch, 'UTF8')::jsonb,"
            " 'lax $.events[*].data.source_message_id') AS m(id)"
            f" WHERE m.id #>> '{{}}' IN ({marks(range(count_of))}))")


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the person's quarantined batches: those whose batch or reasons hold one of their identity values,
    that name one of their profiles, or that carry one of their events (by source message id)."""
    ws = subject.workspace_id
    text = f"lower({conn.dialect.text('batch')} || ' ' || reasons)"
    match, args = contains_any(conn.dialect, text, subject.needles() + subject.mpid_needles())
    erased = conn.execute(f"DELETE FROM quarantine WHERE workspace_id = ? AND {match}", (ws, *args)).rowcount
    for chunk in chunks(sorted(set(subject.source_message_ids))):
        carrying = _carrying_messages(conn, len(chunk))
        erased += conn.execute(f"DELETE FROM quarantine WHERE workspace_id = ? AND {carrying}", (ws, *chunk)).rowcount
    return {"quarantine": erased}
