"""Owner of `audience_connections` (an audience joined to an output, with its sync cursors) and `audience_synced`
(per connection and profile, the identities last sent as an add: what a removal must name at the vendor).

A connection's `change_cursor` is the last `audience_changes.id` it has turned into deliveries; `member_cursor`
the last mpid its initial sync sent (None once it ended). Statuses: `syncing` (initial sync running), `live`,
`disconnecting` (removing what it sent; the row goes when nothing is left).
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from kaon.activation.membership import CONNECTION_PREFIX
from kaon.errors import Conflict, NotFound
from kaon.store.sql import Conn, chunks, marks, rows_limit
from kaon.store.subject import Subject

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()
_COLUMNS = ("id, workspace_id, audience_id, audience_name, output_id, mode, settings, status, change_cursor,"
            " member_cursor, progress, created_ms, modified_ms, update_cursor")
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
    update_cursor: int = 0  # the last audience_identity_updates id read


def _row(r: tuple[Any, ...]) -> AudienceConnection:
    return AudienceConnection(id=str(r[0]), workspace_id=str(r[1]), audience_id=str(r[2]), audience_name=str(r[3]),
                              output_id=str(r[4]), mode=str(r[5]), settings=_decode.decode(r[6]), status=str(r[7]),
                              change_cursor=int(r[8]), member_cursor=None if r[9] is None else int(r[9]),
                              progress=_decode.decode(r[10]), created_ms=int(r[11]), modified_ms=int(r[12]),
                              update_cursor=int(r[13]))


def _text(value: Any) -> str:
    return _json.encode(value).decode()


class ConnectionStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def create(self, *, audience_id: str, audience_name: str, output_id: str, mode: str, settings: dict[str, Any],
               change_cursor: int, member_cursor: int | None, update_cursor: int, now_ms: int) -> AudienceConnection:
        connection_id = f"{CONNECTION_PREFIX}{uuid.uuid4().hex[:16]}"
        status = SYNCING if member_cursor is not None else LIVE
        progress = {"members_sent": 0, "started_unixtime_ms": now_ms,
                    "finished_unixtime_ms": None if status == SYNCING else now_ms}
        inserted = self.conn.execute(
            f"INSERT INTO audience_connections ({_COLUMNS}) VALUES ({marks(range(14))})"
            " ON CONFLICT (workspace_id, audience_id, output_id) DO NOTHING",
            (connection_id, self.ws, audience_id, audience_name, output_id, mode, _text(settings), status,
             change_cursor, member_cursor, _text(progress), now_ms, now_ms, update_cursor)).rowcount
        if not inserted:  # a concurrent connect of the same pair committed first
            raise Conflict(f"audience {audience_id} is already connected to output {output_id}")
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
                progress: dict[str, Any], now_ms: int, update_cursor: int | None = None) -> None:
        self.conn.execute("UPDATE audience_connections SET change_cursor = ?, member_cursor = ?, status = ?,"
                          " progress = ?, modified_ms = ?, update_cursor = ? WHERE workspace_id = ? AND id = ?",
                          (change_cursor, member_cursor, status, _text(progress), now_ms,
                           row.update_cursor if update_cursor is None else update_cursor, self.ws, row.id))

    def syncs_any(self) -> bool:
        """Whether the workspace has a sync connection (the audiences step then notes identity changes)."""
        return self.conn.execute("SELECT 1 FROM audience_connections WHERE workspace_id = ? AND mode = ? LIMIT 1",
                                 (self.ws, SYNC)).fetchone() is not None

    def update_settings(self, row: AudienceConnection, settings: dict[str, Any], now_ms: int) -> None:
        self.conn.execute("UPDATE audience_connections SET settings = ?, modified_ms = ? WHERE workspace_id = ?"
                          " AND id = ?", (_text(settings), now_ms, self.ws, row.id))

    def delete(self, row: AudienceConnection) -> None:
        self.conn.execute("DELETE FROM audience_synced WHERE connection_id = ?", (row.id,))
        self.conn.execute("DELETE FROM audience_connections WHERE workspace_id = ? AND id = ?", (self.ws, row.id))


class IdentityUpdates:
    """Profiles whose identities changed (appended in the processing transaction), read by the sync worker."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def note(self, workspace_id: str, mpids: list[int], now_ms: int) -> None:
        if mpids:
            self.conn.executemany("INSERT INTO audience_identity_updates (workspace_id, mpid, at_ms) VALUES (?, ?, ?)",
                                  [(workspace_id, m, now_ms) for m in mpids])

    def settle(self) -> None:
        """As MemberStore.settle: a cursor over these ids never skips a late commit (PostgreSQL)."""
        if not self.conn.dialect.sqlite:
            self.conn.execute("LOCK TABLE audience_identity_updates IN SHARE MODE")

    def last_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM audience_identity_updates").fetchone()[0])

    def after(self, workspace_id: str, cursor: int, limit: int, until: int | None = None) -> list[tuple[int, int]]:
        """(id, mpid) of the workspace's updates after `cursor` (and up to `until`), oldest first."""
        return [(int(i), int(m)) for i, m in self.conn.execute(
            "SELECT id, mpid FROM audience_identity_updates WHERE workspace_id = ? AND id > ? AND id <= ?"
            " ORDER BY id LIMIT ?", (workspace_id, cursor, 2**62 if until is None else until, rows_limit(limit)))]

    def prune(self) -> int:
        """Forget, in each workspace, what every one of its sync connections has read (everything, in a workspace
        with none): a quiet connection of one workspace holds back no other workspace's updates."""
        return int(self.conn.execute(
            "DELETE FROM audience_identity_updates WHERE id <= coalesce((SELECT min(c.update_cursor) FROM"
            " audience_connections c WHERE c.mode = ? AND c.workspace_id = audience_identity_updates.workspace_id),"
            " id)", (SYNC,)).rowcount)


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

    def of_profiles(self, mpids: Iterable[int]) -> list[tuple[str, int, dict[str, str]]]:
        """(connection, mpid, identities added) for these profiles, by connection then mpid."""
        out: list[tuple[str, int, dict[str, str]]] = []
        for chunk in chunks(sorted(set(mpids))):
            out += [(str(c), int(m), _decode.decode(i)) for c, m, i in self.conn.execute(
                "SELECT connection_id, mpid, identities FROM audience_synced WHERE workspace_id = ?"
                f" AND mpid IN ({marks(chunk)})", (self.ws, *chunk))]
        return sorted(out, key=lambda row: (row[0], row[1]))

    def of_profile(self, mpid: int) -> list[tuple[str, dict[str, str]]]:
        return [(str(c), _decode.decode(i)) for c, i in self.conn.execute(
            "SELECT connection_id, identities FROM audience_synced WHERE workspace_id = ? AND mpid = ?"
            " ORDER BY connection_id", (self.ws, mpid))]


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """A data subject request's erasure: the synced identities and identity updates of the person's profiles."""
    counts = {"audience_synced": 0, "audience_identity_updates": 0}
    for chunk in chunks(sorted(subject.mpids)):
        for table in counts:
            counts[table] += conn.execute(f"DELETE FROM {table} WHERE workspace_id = ? AND mpid IN ({marks(chunk)})",
                                          (subject.workspace_id, *chunk)).rowcount
    return counts
