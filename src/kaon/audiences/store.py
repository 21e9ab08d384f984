"""The audience tables: definitions (audiences and calculated attributes), each profile's incremental state with its
next change time, current memberships and the append-only membership changes (SQL in one place)."""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from kaon.errors import Conflict, NotFound
from kaon.store.sql import Conn, chunks, marks, rows_limit
from kaon.store.subject import Subject

_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()
KINDS = ("calculated", "audience")
KIND_NAMES = {"calculated": "calculated attribute", "audience": "audience"}
STATUSES = ("draft", "backfilling", "active", "inactive", "failed")  # failed: its backfill failed (progress.error)
LIVE = ("backfilling", "active")  # statuses whose state the process stage keeps up


def _text(value: object) -> str:
    return _encode.encode(value).decode()


@dataclass(frozen=True)
class DefinitionRow:
    workspace_id: str
    id: str
    kind: str
    name: str
    body: dict[str, Any]
    status: str
    version: int
    hwm: int | None
    cursor: int
    phase: str
    progress: dict[str, Any]
    created_ms: int
    modified_ms: int

    @functools.cached_property
    def key(self) -> str:
        """The key of this version's state in a profile's state (a new activation starts from empty state)."""
        return f"{self.id}:{self.version}"


_COLUMNS = ("workspace_id, id, kind, name, body, status, version, hwm, cursor, phase, progress, created_ms,"
            " modified_ms")


def _row(raw: Sequence[Any]) -> DefinitionRow:
    ws, id_, kind, name, body, status, version, hwm, cursor, phase, progress, created, modified = raw
    return DefinitionRow(ws, id_, kind, name, _decode.decode(body), status, int(version),
                         None if hwm is None else int(hwm), int(cursor), phase, _decode.decode(progress),
                         int(created), int(modified))


class DefinitionStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def create(self, kind: str, id_: str, name: str, body: dict[str, Any], now_ms: int) -> DefinitionRow:
        if self.by_name(kind, name) is not None:
            raise Conflict(f"{'an' if kind == 'audience' else 'a'} {KIND_NAMES[kind]} named {name!r} exists")
        self.conn.execute(f"INSERT INTO segment_definitions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'draft', 0, NULL, 0,"
                          " '', '{}', ?, ?)", (self.ws, id_, kind, name, _text(body), now_ms, now_ms))
        return self.get(kind, id_)

    def by_name(self, kind: str, name: str) -> DefinitionRow | None:
        raw = self.conn.execute(f"SELECT {_COLUMNS} FROM segment_definitions WHERE workspace_id = ? AND kind = ?"
                                " AND name = ?", (self.ws, kind, name)).fetchone()
        return None if raw is None else _row(raw)

    def find(self, kind: str, id_: str, *, lock: bool = False) -> DefinitionRow | None:
        """The definition; `lock` holds its row until the transaction ends (PostgreSQL), so two backfill workers
        never read the same cursor."""
        suffix = " FOR UPDATE" if lock and not self.conn.dialect.sqlite else ""
        raw = self.conn.execute(f"SELECT {_COLUMNS} FROM segment_definitions WHERE workspace_id = ? AND id = ?"
                                f" AND kind = ?{suffix}", (self.ws, id_, kind)).fetchone()
        return None if raw is None else _row(raw)

    def get(self, kind: str, id_: str) -> DefinitionRow:
        found = self.find(kind, id_)
        if found is None:
            raise NotFound(f"no {KIND_NAMES[kind]} {id_!r}")
        return found

    def page(self, kind: str, limit: int, after: str | None = None) -> list[DefinitionRow]:
        where = "" if after is None else " AND id > ?"
        args: tuple[Any, ...] = (self.ws, kind) if after is None else (self.ws, kind, after)
        return [_row(r) for r in self.conn.execute(
            f"SELECT {_COLUMNS} FROM segment_definitions WHERE workspace_id = ? AND kind = ?{where} ORDER BY id"
            " LIMIT ?", (*args, rows_limit(limit)))]

    def all(self, kind: str) -> list[DefinitionRow]:
        return self.page(kind, -1)

    def live(self, *, lock: bool = False) -> list[DefinitionRow]:
        """Definitions the process stage keeps up (backfilling or active), calculated attributes first; `lock`
        share-locks them until the transaction ends (PostgreSQL), so a backfill page (which locks its definition
        for update) is not half seen: its cursor and the states it wrote agree."""
        suffix = " FOR SHARE" if lock and not self.conn.dialect.sqlite else ""
        return [_row(r) for r in self.conn.execute(
            f"SELECT {_COLUMNS} FROM segment_definitions WHERE workspace_id = ? AND status IN ({marks(LIVE)})"
            f" ORDER BY kind DESC, id{suffix}", (self.ws, *LIVE))]

    def update(self, row: DefinitionRow, *, name: str, body: dict[str, Any], now_ms: int) -> DefinitionRow:
        other = self.by_name(row.kind, name)
        if other is not None and other.id != row.id:
            raise Conflict(f"the name {name!r} is taken")
        self.conn.execute("UPDATE segment_definitions SET name = ?, body = ?, modified_ms = ? WHERE workspace_id = ?"
                          " AND id = ?", (name, _text(body), now_ms, self.ws, row.id))
        return self.get(row.kind, row.id)

    def start(self, row: DefinitionRow, *, hwm: int, body: dict[str, Any], now_ms: int) -> DefinitionRow:
        """A new version begins backfilling up to event id `hwm` (live processing takes the later events)."""
        progress = {"events_total": None, "events_done": 0, "history_events": None, "profiles_done": 0,
                    "started_unixtime_ms": now_ms, "finished_unixtime_ms": None}
        self.conn.execute("UPDATE segment_definitions SET status = 'backfilling', version = version + 1, hwm = ?,"
                          " cursor = 0, phase = 'events', progress = ?, body = ?, modified_ms = ?"
                          " WHERE workspace_id = ? AND id = ?",
                          (hwm, _text(progress), _text(body), now_ms, self.ws, row.id))
        return self.get(row.kind, row.id)

    def advance(self, row: DefinitionRow, *, cursor: int, phase: str, progress: dict[str, Any],
                status: str | None = None) -> None:
        self.conn.execute("UPDATE segment_definitions SET cursor = ?, phase = ?, progress = ?, status = ?"
                          " WHERE workspace_id = ? AND id = ? AND version = ?",
                          (cursor, phase, _text(progress), status or row.status, self.ws, row.id, row.version))

    def set_status(self, row: DefinitionRow, status: str, now_ms: int) -> None:
        self.conn.execute("UPDATE segment_definitions SET status = ?, modified_ms = ? WHERE workspace_id = ?"
                          " AND id = ?", (status, now_ms, self.ws, row.id))

    def delete(self, row: DefinitionRow) -> None:
        self.conn.execute("DELETE FROM segment_definitions WHERE workspace_id = ? AND id = ?", (self.ws, row.id))


def lock_live(conn: Conn) -> None:
    """Share-lock every workspace's live definitions (PostgreSQL), before any profile state row: the order a
    backfill page takes them in (definition, then states), so the scheduler and a backfill cannot deadlock."""
    if not conn.dialect.sqlite:
        conn.execute(f"SELECT 1 FROM segment_definitions WHERE status IN ({marks(LIVE)}) FOR SHARE", LIVE)


def backfilling(conn: Conn) -> list[DefinitionRow]:
    """Every workspace's definitions with a backfill to run."""
    return [_row(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM segment_definitions WHERE status = 'backfilling' ORDER BY workspace_id, id")]


class StateStore:
    """Each profile's incremental state (JSON) and next change time."""

    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def load(self, mpids: Iterable[int], *, lock: bool = False) -> dict[int, dict[str, Any]]:
        """The states of these profiles; `lock` holds their rows until the transaction ends (PostgreSQL)."""
        wanted = sorted(set(mpids))
        out: dict[int, dict[str, Any]] = {}
        if lock and not self.conn.dialect.sqlite and wanted:
            # A row must exist to be locked: create missing ones first (empty state, no change due).
            self.conn.executemany("INSERT INTO profile_segments (workspace_id, mpid, state, due_ms) VALUES"
                                  " (?, ?, '{}', NULL) ON CONFLICT (workspace_id, mpid) DO NOTHING",
                                  [(self.ws, m) for m in wanted])
        suffix = " ORDER BY mpid FOR UPDATE" if lock and not self.conn.dialect.sqlite else ""
        for chunk in chunks(wanted):
            for mpid, state in self.conn.execute(
                    f"SELECT mpid, state FROM profile_segments WHERE workspace_id = ? AND mpid IN ({marks(chunk)})"
                    f"{suffix}", (self.ws, *chunk)):
                out[int(mpid)] = _decode.decode(state)
        return out

    def save_many(self, rows: Sequence[tuple[int, dict[str, Any], int | None]], *, keep_due: bool = False) -> None:
        """Store profiles' states and next change times, in one statement (`keep_due`: the earlier of each one
        given and the one stored; an early one costs a wake-up that finds nothing to change)."""
        if not rows:
            return
        d = self.conn.dialect
        due = (f"CASE WHEN profile_segments.due_ms IS NULL THEN excluded.due_ms WHEN excluded.due_ms IS NULL THEN"
               f" profile_segments.due_ms ELSE {d.least('profile_segments.due_ms', 'excluded.due_ms')} END"
               if keep_due else "excluded.due_ms")
        self.conn.executemany("INSERT INTO profile_segments (workspace_id, mpid, state, due_ms) VALUES (?, ?, ?, ?)"
                              " ON CONFLICT (workspace_id, mpid) DO UPDATE SET state = excluded.state,"
                              f" due_ms = {due}", [(self.ws, mpid, _text(state), due) for mpid, state, due in rows])

    def forget_many(self, mpids: Sequence[int]) -> None:
        if mpids:
            self.conn.executemany("DELETE FROM profile_segments WHERE workspace_id = ? AND mpid = ?",
                                  [(self.ws, m) for m in mpids])

    def set_due(self, mpid: int, due_ms: int | None) -> None:
        self.conn.execute("UPDATE profile_segments SET due_ms = ? WHERE workspace_id = ? AND mpid = ?",
                          (due_ms, self.ws, mpid))

    def mpids_with_state(self, limit: int, after: int | None) -> list[int]:
        where = "" if after is None else " AND mpid > ?"
        args: tuple[Any, ...] = (self.ws,) if after is None else (self.ws, after)
        return [int(m) for (m,) in self.conn.execute(
            f"SELECT mpid FROM profile_segments WHERE workspace_id = ?{where} ORDER BY mpid LIMIT ?",
            (*args, limit))]

    def sizes(self) -> tuple[int, int]:
        """(profiles with state, bytes of state JSON) in the workspace."""
        row = self.conn.execute("SELECT count(*), coalesce(sum(length(state)), 0) FROM profile_segments"
                                " WHERE workspace_id = ?", (self.ws,)).fetchone()
        return int(row[0]), int(row[1])


def due_profiles(conn: Conn, now_ms: int, limit: int) -> list[tuple[str, int, int]]:
    """(workspace, mpid, due_ms) of profiles whose next change time has come; on PostgreSQL their rows stay locked
    until the transaction ends, and rows another transaction holds are skipped (taken on a later run)."""
    suffix = "" if conn.dialect.sqlite else " FOR UPDATE SKIP LOCKED"
    return [(str(ws), int(m), int(d)) for ws, m, d in conn.execute(
        f"SELECT workspace_id, mpid, due_ms FROM profile_segments WHERE due_ms <= ? ORDER BY due_ms LIMIT ?{suffix}",
        (now_ms, limit))]


@dataclass(frozen=True)
class Change:
    audience_id: str
    mpid: int
    action: str  # enter or exit
    at_ms: int
    cause: str  # event, time, activation, merge, unmerge, deactivated, deleted, redefined


class MemberStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def record(self, changes: Sequence[Change], now_ms: int) -> None:
        """Apply entries and exits to the members and append them to the changes (in the caller's transaction)."""
        if not changes:
            return
        # Changes are in time order and a profile may enter and leave in one call (a late scheduler run): its last
        # change decides whether it is a member.
        final = {(c.audience_id, c.mpid): c for c in changes}
        enters = [(self.ws, c.audience_id, c.mpid, c.at_ms) for c in final.values() if c.action == "enter"]
        exits = [(self.ws, c.audience_id, c.mpid) for c in final.values() if c.action == "exit"]
        if exits:
            self.conn.executemany("DELETE FROM audience_members WHERE workspace_id = ? AND audience_id = ?"
                                  " AND mpid = ?", exits)
        if enters:
            self.conn.executemany("INSERT INTO audience_members (workspace_id, audience_id, mpid, entered_ms)"
                                  " VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, audience_id, mpid) DO UPDATE"
                                  " SET entered_ms = excluded.entered_ms", enters)  # left and came back: the new time
        self.conn.executemany("INSERT INTO audience_changes (workspace_id, audience_id, mpid, action, at_ms, cause,"
                              " recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              [(self.ws, c.audience_id, c.mpid, c.action, c.at_ms, c.cause, now_ms) for c in changes])

    def members(self, audience_id: str, limit: int, after: int | None = None) -> list[tuple[int, int]]:
        where = "" if after is None else " AND mpid > ?"
        args: tuple[Any, ...] = (self.ws, audience_id) if after is None else (self.ws, audience_id, after)
        return [(int(m), int(e)) for m, e in self.conn.execute(
            f"SELECT mpid, entered_ms FROM audience_members WHERE workspace_id = ? AND audience_id = ?{where}"
            " ORDER BY mpid LIMIT ?", (*args, rows_limit(limit)))]

    def settle(self) -> None:
        """Until this transaction ends, no change is recorded, and those being recorded are committed first
        (PostgreSQL; SQLite has one writer): a reader's cursor over change ids then never skips a late commit."""
        if not self.conn.dialect.sqlite:
            self.conn.execute("LOCK TABLE audience_changes IN SHARE MODE")

    def last_change_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM audience_changes").fetchone()[0])

    def size(self, audience_id: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM audience_members WHERE workspace_id = ? AND audience_id = ?",
                                     (self.ws, audience_id)).fetchone()[0])

    def moved_since(self, audience_id: str, since_ms: int) -> tuple[int, int]:
        """(entries, exits) of distinct profiles with a change at or after `since_ms`."""
        found = dict(self.conn.execute(
            "SELECT action, count(DISTINCT mpid) FROM audience_changes WHERE workspace_id = ? AND audience_id = ?"
            " AND at_ms >= ? GROUP BY action", (self.ws, audience_id, since_ms)).fetchall())
        return int(found.get("enter", 0)), int(found.get("exit", 0))

    def changes(self, audience_id: str | None, limit: int, after: int | None = None,
                until: int | None = None) -> list[dict[str, Any]]:
        """Changes after the id `after` (and up to `until`), oldest first."""
        clauses, args = ["workspace_id = ?"], [self.ws]
        if audience_id is not None:
            clauses.append("audience_id = ?")
            args.append(audience_id)
        if after is not None:
            clauses.append("id > ?")
            args.append(str(after))
        if until is not None:
            clauses.append("id <= ?")
            args.append(str(until))
        return [{"id": int(i), "audience_id": a, "mpid": int(m), "action": act, "at_unixtime_ms": int(at),
                 "cause": cause, "recorded_unixtime_ms": int(rec)} for i, a, m, act, at, cause, rec in
                self.conn.execute("SELECT id, audience_id, mpid, action, at_ms, cause, recorded_ms FROM"
                                  f" audience_changes WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
                                  (*args, rows_limit(limit)))]

    def is_member(self, audience_id: str, mpid: int) -> bool:
        return self.conn.execute("SELECT 1 FROM audience_members WHERE workspace_id = ? AND audience_id = ?"
                                 " AND mpid = ?", (self.ws, audience_id, mpid)).fetchone() is not None

    def profile_changes(self, mpid: int, audience_id: str | None = None,
                        newest: int | None = None) -> list[dict[str, Any]]:
        """One profile's membership changes (of one audience, when given; the `newest` ones only), oldest first."""
        where, args = "workspace_id = ? AND mpid = ?", [self.ws, mpid]
        if audience_id is not None:
            where += " AND audience_id = ?"
            args.append(audience_id)
        rows = self.conn.execute("SELECT id, audience_id, action, at_ms, cause, recorded_ms FROM audience_changes"
                                 f" WHERE {where} ORDER BY id DESC LIMIT ?",
                                 (*args, rows_limit(-1 if newest is None else newest))).fetchall()
        return [{"id": int(i), "audience_id": a, "action": act, "at_unixtime_ms": int(at), "cause": cause,
                 "recorded_unixtime_ms": int(rec)} for i, a, act, at, cause, rec in reversed(rows)]

    def memberships(self, mpid: int) -> list[tuple[str, int]]:
        return [(str(a), int(e)) for a, e in self.conn.execute(
            "SELECT audience_id, entered_ms FROM audience_members WHERE workspace_id = ? AND mpid = ?"
            " ORDER BY audience_id", (self.ws, mpid))]

    def clear(self, audience_id: str) -> list[int]:
        """Every member of the audience (removed); the caller records their exits."""
        found = [m for m, _ in self.members(audience_id, -1)]
        self.conn.execute("DELETE FROM audience_members WHERE workspace_id = ? AND audience_id = ?",
                          (self.ws, audience_id))
        return found


def export_subject(conn: Conn, subject: Subject) -> dict[str, list[dict[str, Any]]]:
    """The person's calculated state, memberships and membership changes."""
    ws, mpids = subject.workspace_id, sorted(subject.mpids)
    if not mpids:
        return {}
    inside = f"IN ({marks(mpids)})"
    return {
        "profile_segments": [{"mpid": str(m), "state": _decode.decode(s)} for m, s in conn.execute(
            f"SELECT mpid, state FROM profile_segments WHERE workspace_id = ? AND mpid {inside}", (ws, *mpids))],
        "audience_members": [{"mpid": str(m), "audience_id": a, "entered_unixtime_ms": e} for m, a, e in conn.execute(
            f"SELECT mpid, audience_id, entered_ms FROM audience_members WHERE workspace_id = ? AND mpid {inside}",
            (ws, *mpids))],
        "audience_changes": [{"mpid": str(m), "audience_id": a, "action": act, "at_unixtime_ms": at, "cause": c}
                             for m, a, act, at, c in conn.execute(
            f"SELECT mpid, audience_id, action, at_ms, cause FROM audience_changes WHERE workspace_id = ? AND mpid"
            f" {inside} ORDER BY id", (ws, *mpids))],
    }


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the person's state, memberships and membership changes; rows per table."""
    ws, mpids = subject.workspace_id, sorted(subject.mpids)
    counts: dict[str, int] = {}
    if not mpids:
        return counts
    for table in ("profile_segments", "audience_members", "audience_changes"):
        counts[table] = conn.execute(f"DELETE FROM {table} WHERE workspace_id = ? AND mpid IN ({marks(mpids)})",
                                     (ws, *mpids)).rowcount
    return counts
