"""Owner of `audience_connections` (an audience joined to an output, with its sync cursors) and `audience_synced`
(per connection and profile, the identities last sent as an add: what a removal must name at the vendor).

A connection's `change_cursor` is the last `audience_changes.id` it has turned into deliveries; `member_cursor`
the last mpid its initial sync sent (None once it ended). Statuses: `syncing` (initial sync running), `live`,
`disconnecting` (removing what it sent; the row goes when nothing is left).
"""

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from kaon.errors import NotFound
from kaon.store.sql import Conn, chunks, marks, rows_limit
from kaon.store.subject import Subject

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()
_COLUMNS = ("id, workspace_id, audience_id, audience_name, output_id, mode, settings, status, change_cursor,"
            " member_cursor, progress, created_ms, modified_ms")
SYNC, TRIGGER = "sync", "trigger"
SYNCING, LIVE, DISCONNECTING = "syncing", "live", "disconnecting"


@dataclass(frozen=True)
class AudienceConnection:
    id: str
    workspace_id: str
    audience_id: str
    audience_name: str
    output_id: str
    mode: str  # sync (an audience output: adds and removes) or trigger (an event output: each change as an event)
    settings: dict[str, Any]
    status: str
    change_cursor: int
    member_cursor: int | None
    progress: dict[str, Any]
    created_ms: int
    modified_ms: int


def _row(r: tuple[Any, ...]) -> AudienceConnection:
    return AudienceConnection(id=str(r[0]), workspace_id=str(r[1]), audience_id=str(r[2]), audience_name=str(r[3]),
                              output_id=str(r[4]), mode=str(r[5]), settings=_decode.decode(r[6]), status=str(r[7]),
                              change_cursor=int(r[8]), member_cursor=None if r[9] is None else int(r[9]),
                              progress=_decode.decode(r[10]), created_ms=int(r[11]), modified_ms=int(r[12]))


def _text(value: Any) -> str:
    return _json.encode(value).decode()


class ConnectionStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def create(self, *, audience_id: str, audience_name: str, output_id: str, mode: str, settings: dict[str, Any],
               change_cursor: int, member_cursor: int | None, now_ms: int) -> AudienceConnection:
        connection_id = f"acn_{uuid.uuid4().hex[:16]}"
        status = SYNCING if member_cursor is not None else LIVE
        progress = {"members_sent": 0, "started_unixtime_ms": now_ms,
                    "finished_unixtime_ms": None if status == SYNCING else now_ms}
        self.conn.execute(f"INSERT INTO audience_connections ({_COLUMNS}) VALUES ({marks(range(13))})",
                          (connection_id, self.ws, audience_id, audience_name, output_id, mode, _text(settings),
                           status, change_cursor, member_cursor, _text(progress), now_ms, now_ms))
        return self.get(connection_id)

    def find(self, connection_id: str, *, lock: bool = False) -> AudienceConnection | None:
        suffix = " FOR UPDATE" if lock and not self.conn.dialect.sqlite else ""
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM audience_connections WHERE workspace_id = ? AND id = ?"
                                f"{suffix}", (self.ws, connection_id)).fetchone()
        return None if row is None else _row(row)

    def get(self, connection_id: str) -> AudienceConnection:
        found = self.find(connection_id)
        if found is None:
            raise NotFound(f"audience connection {connection_id} not found")
        return found

    def of_audience(self, audience_id: str, limit: int = -1,
                    after: tuple[int, str] | None = None) -> list[AudienceConnection]:
        """Oldest first; `after` is the (created_ms, id) last shown."""
        where, args = "", []
        if after is not None:
            where, args = " AND (created_ms > ? OR (created_ms = ? AND id > ?))", [after[0], after[0], after[1]]
        return [_row(r) for r in self.conn.execute(
            f"SELECT {_COLUMNS} FROM audience_connections WHERE workspace_id = ? AND audience_id = ?{where}"
            " ORDER BY created_ms, id LIMIT ?", (self.ws, audience_id, *args, rows_limit(limit)))]

    def of_output(self, output_id: str) -> list[AudienceConnection]:
        return [_row(r) for r in self.conn.execute(
            f"SELECT {_COLUMNS} FROM audience_connections WHERE workspace_id = ? AND output_id = ?"
            " ORDER BY created_ms, id", (self.ws, output_id))]

    def advance(self, row: AudienceConnection, *, change_cursor: int, member_cursor: int | None, status: str,
                progress: dict[str, Any], now_ms: int) -> None:
        self.conn.execute("UPDATE audience_connections SET change_cursor = ?, member_cursor = ?, status = ?,"
                          " progress = ?, modified_ms = ? WHERE workspace_id = ? AND id = ?",
                          (change_cursor, member_cursor, status, _text(progress), now_ms, self.ws, row.id))

    def update_settings(self, row: AudienceConnection, settings: dict[str, Any], now_ms: int) -> None:
        self.conn.execute("UPDATE audience_connections SET settings = ?, modified_ms = ? WHERE workspace_id = ?"
                          " AND id = ?", (_text(settings), now_ms, self.ws, row.id))

    def delete(self, row: AudienceConnection) -> None:
        self.conn.execute("DELETE FROM audience_synced WHERE connection_id = ?", (row.id,))
        self.conn.execute("DELETE FROM audience_connections WHERE workspace_id = ? AND id = ?", (self.ws, row.id))


def connections_to_run(conn: Conn) -> list[AudienceConnection]:
    """Every connection of every workspace, oldest first (the sync worker walks them)."""
    return [_row(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM audience_connections ORDER BY created_ms, id")]


class SyncedStore:
    """What each connection has added at the vendor, per profile (the identities it sent)."""

    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def of(self, connection_id: str, mpids: list[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        for chunk in chunks(sorted(set(mpids))):
            for mpid, identities in self.conn.execute(
                    "SELECT mpid, identities FROM audience_synced WHERE connection_id = ?"
                    f" AND mpid IN ({marks(chunk)})", (connection_id, *chunk)):
                out[int(mpid)] = _decode.decode(identities)
        return out

    def put(self, connection_id: str, mpid: int, identities: dict[str, str], now_ms: int) -> None:
        self.conn.execute("INSERT INTO audience_synced (connection_id, mpid, workspace_id, identities, synced_ms)"
                          " VALUES (?, ?, ?, ?, ?) ON CONFLICT (connection_id, mpid) DO UPDATE SET"
                          " identities = excluded.identities, synced_ms = excluded.synced_ms",
                          (connection_id, mpid, self.ws, _text(identities), now_ms))

    def drop(self, connection_id: str, mpid: int) -> None:
        self.conn.execute("DELETE FROM audience_synced WHERE connection_id = ? AND mpid = ?", (connection_id, mpid))

    def page(self, connection_id: str, limit: int) -> list[tuple[int, dict[str, str]]]:
        return [(int(m), _decode.decode(i)) for m, i in self.conn.execute(
            "SELECT mpid, identities FROM audience_synced WHERE connection_id = ? ORDER BY mpid LIMIT ?",
            (connection_id, rows_limit(limit)))]

    def count(self, connection_id: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM audience_synced WHERE connection_id = ?",
                                     (connection_id,)).fetchone()[0])

    def of_profile(self, mpid: int) -> list[tuple[str, dict[str, str]]]:
        return [(str(c), _decode.decode(i)) for c, i in self.conn.execute(
            "SELECT connection_id, identities FROM audience_synced WHERE workspace_id = ? AND mpid = ?"
            " ORDER BY connection_id", (self.ws, mpid))]


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """A data subject request's erasure: the synced identities of the person's profiles."""
    removed = 0
    for chunk in chunks(sorted(subject.mpids)):
        removed += conn.execute(f"DELETE FROM audience_synced WHERE workspace_id = ? AND mpid IN ({marks(chunk)})",
                                (subject.workspace_id, *chunk)).rowcount
    return {"audience_synced": removed}
