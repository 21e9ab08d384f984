"""The `consent_history` table's owner: every distinct consent record a batch carried for a profile.

Appended by the profiles step, named with its stored batch later in the slice, re-keyed by merges (and moved
back by unmerges), listed by the admin API, and erased or exported for a data subject request.
"""

from collections.abc import Iterable
from typing import Any

import msgspec

from kaon.store.sql import Conn, chunks, marks, rows_limit
from kaon.store.subject import Subject


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """Where a consent record came from: the input, the batch's `source_request_id` and its log position."""

    received_ms: int
    input_id: str | None = None
    source_request_id: str | None = None
    log_partition: str | None = None
    log_seq: int | None = None


_COLUMNS = ("id, mpid, regulation, purpose, consented, document, timestamp_unixtime_ms, location, hardware_id,"
            " received_ms, input_id, source_request_id, log_partition, log_seq, batch_id")
_MOVE = 500  # ids per re-keying statement


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class ConsentHistory:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def append(self, mpid: int, regulation: str, purpose: str, record: dict[str, Any], source: Source) -> int | None:
        """Append one record (unless this profile already holds the identical record); the new row's id."""
        consented = int(bool(record.get("consented")))
        timestamp = int(record.get("timestamp_unixtime_ms") or source.received_ms)
        document, location, hardware = (_text(record.get(k)) for k in ("document", "location", "hardware_id"))
        held = self.conn.execute(
            "SELECT 1 FROM consent_history WHERE workspace_id = ? AND mpid = ? AND regulation = ? AND purpose = ?"
            " AND timestamp_unixtime_ms = ? AND consented = ? AND document IS NOT DISTINCT FROM ?"
            " AND location IS NOT DISTINCT FROM ? AND hardware_id IS NOT DISTINCT FROM ?",
            (self.ws, mpid, regulation, purpose, timestamp, consented, document, location, hardware)).fetchone()
        if held is not None:
            return None
        cursor = self.conn.execute(
            "INSERT INTO consent_history (workspace_id, mpid, regulation, purpose, consented, document,"
            " timestamp_unixtime_ms, location, hardware_id, received_ms, input_id, source_request_id,"
            " log_partition, log_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (self.ws, mpid, regulation, purpose, consented, document, timestamp, location, hardware,
             source.received_ms, source.input_id, source.source_request_id, source.log_partition, source.log_seq))
        return int(cursor.fetchone()[0])

    def append_state(self, mpid: int, state: dict[str, Any], source: Source) -> list[int]:
        """Every record of a `{regulation: {purpose: record}}` state; returns the ids of those appended."""
        ids = (self.append(mpid, regulation, purpose, record, source)
               for regulation, purposes in state.items() for purpose, record in purposes.items())
        return [i for i in ids if i is not None]

    def set_batch(self, ids: list[int], batch_id: int) -> None:
        """Name the stored batch the records came in (known once the batch is stored, later in the slice)."""
        for chunk in chunks(ids):
            self.conn.execute(f"UPDATE consent_history SET batch_id = ? WHERE workspace_id = ? AND id IN"
                              f" ({marks(chunk)})", (batch_id, self.ws, *chunk))

    def history(self, mpids: Iterable[int], limit: int = -1,
                after: tuple[int, int, int] | None = None) -> list[dict[str, Any]]:
        """The records of these profiles, newest (by consent timestamp, then arrival) first; `after` is the
        (timestamp_unixtime_ms, received_ms, id) of the last record shown (limit -1: all)."""
        ids = sorted(set(mpids))
        where, args = ("", ()) if after is None else (
            " AND (timestamp_unixtime_ms, received_ms, id) < (?, ?, ?)", after)
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM consent_history WHERE workspace_id = ? AND mpid IN ({marks(ids)}){where}"
            " ORDER BY timestamp_unixtime_ms DESC, received_ms DESC, id DESC LIMIT ?",
            (self.ws, *ids, *args, rows_limit(limit)))
        return [{"id": r[0], "mpid": str(r[1]), "regulation": r[2], "purpose": r[3], "consented": bool(r[4]),
                 "document": r[5], "timestamp_unixtime_ms": r[6], "location": r[7], "hardware_id": r[8],
                 "received_ms": r[9], "input_id": r[10], "source_request_id": r[11],
                 "source": None if r[12] is None else f"{r[12]}:{r[13]}", "batch_id": r[14]} for r in rows]

    def ids_of(self, mpid: int) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM consent_history WHERE workspace_id = ? AND mpid = ? ORDER BY id", (self.ws, mpid))]

    def move(self, ids: list[int], from_mpid: int, to_mpid: int) -> int:
        """Re-key these rows (still held by `from_mpid`) to `to_mpid`; returns how many moved."""
        moved = 0
        for chunk in chunks(ids, _MOVE):
            moved += self.conn.execute(
                f"UPDATE consent_history SET mpid = ? WHERE workspace_id = ? AND mpid = ? AND id IN ({marks(chunk)})",
                (to_mpid, self.ws, from_mpid, *chunk)).rowcount
        return moved


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the consent records of the person's profiles (live ones and merged tombstones)."""
    erased = 0
    for chunk in chunks(sorted(subject.mpids)):
        erased += conn.execute(f"DELETE FROM consent_history WHERE workspace_id = ? AND mpid IN ({marks(chunk)})",
                               (subject.workspace_id, *chunk)).rowcount
    return {"consent_history": erased}


def export_subject(conn: Conn, subject: Subject) -> list[dict[str, Any]]:
    """The person's consent records for an access export, oldest (by consent timestamp) first."""
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(sorted(subject.mpids)):
        rows += conn.execute(
            "SELECT mpid, regulation, purpose, consented, document, timestamp_unixtime_ms, location, hardware_id,"
            f" received_ms, id FROM consent_history WHERE workspace_id = ? AND mpid IN ({marks(chunk)})",
            (subject.workspace_id, *chunk)).fetchall()
    rows.sort(key=lambda r: (r[5], r[9]))
    return [{"mpid": str(m), "regulation": reg, "purpose": pur, "consented": bool(c), "document": doc,
             "timestamp_ms": ts, "location": loc, "hardware_id": hw, "received_ms": r}
            for m, reg, pur, c, doc, ts, loc, hw, r, _ in rows]
