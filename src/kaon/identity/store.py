"""Profiles, their identities and attributes, merges and alias requests in the main store (SQL in one place)."""

import secrets
from collections.abc import Iterable
from typing import Any

import msgspec

from kaon.identity.extract import Identity
from kaon.store.sql import Conn, chunks, contains_any, marks, rows_limit
from kaon.store.subject import Subject

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


def _text(value: object) -> str:
    """JSON for a TEXT column (`consent`, attribute values): a str, as PostgreSQL binds bytes as bytea."""
    return _json.encode(value).decode()


def new_mpid() -> int:
    """A random non-zero signed 63-bit id (mParticle's MPIDs are signed 64-bit; both signs appear)."""
    while True:
        mpid = secrets.randbits(63) - (1 << 62)
        if mpid:
            return mpid


ProfileSummary = tuple[dict[str, Any], bool, int | None, int | None]


class ProfileStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    # Profiles
    def create(self, now_ms: int, mpid: int | None = None) -> int:
        """A new profile; with `mpid` (e.g. an mpid issued elsewhere, kept on migration) when it is free."""
        seen = now_ms
        while True:
            if mpid is None or self.row(mpid) is not None:
                mpid = new_mpid()
            cursor = self.conn.execute(
                "INSERT INTO profiles (workspace_id, mpid, created_ms, first_seen_ms, last_seen_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, mpid) DO NOTHING",
                (self.ws, mpid, now_ms, seen, seen),
            )
            if cursor.rowcount == 1:
                return mpid

    def exists(self, mpid: int) -> bool:
        return self.live(mpid) is not None

    def live(self, mpid: int) -> int | None:
        """The live profile for `mpid`: itself, or the survivor it was merged into; None if unknown."""
        seen = set()
        current: int | None = mpid
        while current is not None and current not in seen:
            seen.add(current)
            row = self.conn.execute(
                "SELECT merged_into FROM profiles WHERE workspace_id = ? AND mpid = ?", (self.ws, current)
            ).fetchone()
            if row is None:
                return None
            if row[0] is None:
                return current
            current = int(row[0])
        return None

    def live_page(self, limit: int, after: int | None = None) -> list[int]:
        """Mpids of live profiles (not merged into another), in mpid order; `after` is the last mpid shown."""
        after_sql, args = ("", ()) if after is None else (" AND mpid > ?", (after,))
        return [int(r[0]) for r in self.conn.execute(
            f"SELECT mpid FROM profiles WHERE workspace_id = ?{after_sql} AND merged_into IS NULL ORDER BY mpid"
            " LIMIT ?", (self.ws, *args, limit))]

    def row(self, mpid: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT mpid, created_ms, first_seen_ms, last_seen_ms, session_count, is_opted_out, consent,"
            " merged_into FROM profiles WHERE workspace_id = ? AND mpid = ?", (self.ws, mpid),
        ).fetchone()
        if row is None:
            return None
        return {"mpid": row[0], "created_ms": row[1], "first_seen_ms": row[2], "last_seen_ms": row[3],
                "session_count": row[4], "is_opted_out": bool(row[5]), "consent": _decode.decode(row[6]),
                "merged_into": row[7]}

    def seen(self, mpid: int, first_ms: int, last_ms: int, sessions: int = 0) -> None:
        d = self.conn.dialect
        self.conn.execute(
            f"UPDATE profiles SET first_seen_ms = {d.least('first_seen_ms', '?')},"
            f" last_seen_ms = {d.greatest('last_seen_ms', '?')},"
            " session_count = session_count + ? WHERE workspace_id = ? AND mpid = ?",
            (first_ms, last_ms, sessions, self.ws, mpid),
        )

    def set_opted_out(self, mpid: int, opted_out: bool) -> None:
        self.conn.execute("UPDATE profiles SET is_opted_out = ? WHERE workspace_id = ? AND mpid = ?",
                          (int(opted_out), self.ws, mpid))

    def set_consent(self, mpid: int, consent: dict[str, Any]) -> None:
        self.conn.execute("UPDATE profiles SET consent = ? WHERE workspace_id = ? AND mpid = ?",
                          (_text(consent), self.ws, mpid))

    # Identities
    def owners(self, identities: Iterable[Identity]) -> dict[Identity, int]:
        out = {}
        for identity_type, value in identities:
            row = self.conn.execute(
                "SELECT mpid FROM identities WHERE workspace_id = ? AND identity_type = ? AND value = ?",
                (self.ws, identity_type, value),
            ).fetchone()
            if row is not None:
                out[(identity_type, value)] = int(row[0])
        return out

    def link(self, mpid: int, identity: Identity, now_ms: int) -> int:
        """Give the identity to `mpid` unless someone holds it; returns its owner (the constraint decides)."""
        identity_type, value = identity
        self.conn.execute(
            "INSERT INTO identities (workspace_id, identity_type, value, mpid, first_seen_ms)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, identity_type, value) DO NOTHING",
            (self.ws, identity_type, value, mpid, now_ms),
        )
        owner = self.owners([identity])
        return owner[identity]

    def unlink(self, mpid: int, identity: Identity) -> bool:
        cursor = self.conn.execute(
            "DELETE FROM identities WHERE workspace_id = ? AND identity_type = ? AND value = ? AND mpid = ?",
            (self.ws, identity[0], identity[1], mpid),
        )
        return cursor.rowcount == 1

    def identities_of_many(self, mpids: Iterable[int]) -> dict[int, list[tuple[str, str, int]]]:
        """`identities` of several profiles at once (mpid → (type, value, first_seen_ms), stable order)."""
        out: dict[int, list[tuple[str, str, int]]] = {}
        source = "identities INDEXED BY identities_by_profile" if self.conn.dialect.sqlite else "identities"
        for chunk in chunks(sorted(set(mpids))):
            for m, t, v, s in self.conn.execute(
                    f"SELECT mpid, identity_type, value, first_seen_ms FROM {source} WHERE workspace_id = ?"
                    f" AND mpid IN ({marks(chunk)})", (self.ws, *chunk)):
                out.setdefault(int(m), []).append((str(t), str(v), int(s)))
        return {m: sorted(found) for m, found in out.items()}

    def summary_of_many(self, mpids: Iterable[int]) -> dict[int, ProfileSummary]:
        """(consent, is_opted_out, first_seen_ms, last_seen_ms) of several profiles at once."""
        out: dict[int, ProfileSummary] = {}
        for chunk in chunks(sorted(set(mpids))):
            for m, consent, opted_out, first, last in self.conn.execute(
                    f"SELECT mpid, consent, is_opted_out, first_seen_ms, last_seen_ms FROM profiles WHERE"
                    f" workspace_id = ? AND mpid IN ({marks(chunk)})", (self.ws, *chunk)):
                out[int(m)] = (_decode.decode(consent), bool(opted_out), first, last)
        return out

    def identities(self, mpid: int) -> list[tuple[str, str, int]]:
        """(type, value, first_seen_ms) of a profile, in a stable order."""
        # Without INDEXED BY (and with ORDER BY) SQLite walks the primary key of the whole workspace.
        source = "identities INDEXED BY identities_by_profile" if self.conn.dialect.sqlite else "identities"
        return sorted((str(t), str(v), int(s)) for t, v, s in self.conn.execute(
            f"SELECT identity_type, value, first_seen_ms FROM {source}"
            " WHERE workspace_id = ? AND mpid = ?",
            (self.ws, mpid),
        ))

    def values_of(self, mpid: int, identity_type: str) -> set[str]:
        return {str(v) for (v,) in self.conn.execute(
            "SELECT value FROM identities WHERE workspace_id = ? AND mpid = ? AND identity_type = ?",
            (self.ws, mpid, identity_type))}

    # Attributes: newest wins (an update older than the stored value is ignored). A removal is kept as a
    # tombstone row (`deleted = 1`) with its time, so a set that is older than the removal but arrives after it
    # does not bring the attribute back: the result does not depend on arrival order.
    def set_attribute(self, mpid: int, name: str, value: object, updated_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO profile_attributes (workspace_id, mpid, name, value, updated_ms, deleted)"
            " VALUES (?, ?, ?, ?, ?, 0)"
            " ON CONFLICT (workspace_id, mpid, name) DO UPDATE SET value = excluded.value,"
            " updated_ms = excluded.updated_ms, deleted = 0 WHERE excluded.updated_ms >= profile_attributes.updated_ms",
            (self.ws, mpid, name, _text(value), updated_ms),
        )

    def delete_attribute(self, mpid: int, name: str, updated_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO profile_attributes (workspace_id, mpid, name, value, updated_ms, deleted)"
            " VALUES (?, ?, ?, ?, ?, 1)"
            " ON CONFLICT (workspace_id, mpid, name) DO UPDATE SET value = excluded.value,"
            " updated_ms = excluded.updated_ms, deleted = 1 WHERE excluded.updated_ms >= profile_attributes.updated_ms",
            (self.ws, mpid, name, _text(None), updated_ms),
        )

    def put_attribute_row(self, mpid: int, row: "AttributeRow") -> None:
        """Write a row exactly as given (merge and unmerge restore snapshots with it)."""
        name, value, updated_ms, deleted = row
        self.conn.execute(
            "INSERT INTO profile_attributes (workspace_id, mpid, name, value, updated_ms, deleted)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, mpid, name) DO UPDATE SET value = excluded.value,"
            " updated_ms = excluded.updated_ms, deleted = excluded.deleted",
            (self.ws, mpid, name, _text(value), updated_ms, int(deleted)),
        )

    def forget_attribute(self, mpid: int, name: str) -> None:
        """Remove the row itself, tombstone included (unmerge of an attribute the survivor never had)."""
        self.conn.execute("DELETE FROM profile_attributes WHERE workspace_id = ? AND mpid = ? AND name = ?",
                          (self.ws, mpid, name))

    def attributes(self, mpid: int) -> dict[str, tuple[Any, int]]:
        """name → (value, updated_ms) of the attributes the profile holds (removed ones left out)."""
        return {name: (_decode.decode(value), int(updated)) for name, value, updated in self.conn.execute(
            "SELECT name, value, updated_ms FROM profile_attributes WHERE workspace_id = ? AND mpid = ?"
            " AND deleted = 0 ORDER BY name", (self.ws, mpid),
        )}

    def attributes_of_many(self, mpids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The attribute values several profiles hold (removed ones left out), at once."""
        out: dict[int, dict[str, Any]] = {}
        for chunk in chunks(sorted(set(mpids))):
            for m, name, value in self.conn.execute(
                    f"SELECT mpid, name, value FROM profile_attributes WHERE workspace_id = ?"
                    f" AND mpid IN ({marks(chunk)}) AND deleted = 0 ORDER BY mpid, name", (self.ws, *chunk)):
                out.setdefault(int(m), {})[str(name)] = _decode.decode(value)
        return out

    def attribute_rows(self, mpid: int) -> list["AttributeRow"]:
        """Every attribute row of the profile, removals (tombstones) included, by name."""
        return [(str(name), _decode.decode(value), int(updated), bool(deleted))
                for name, value, updated, deleted in self.conn.execute(
                    "SELECT name, value, updated_ms, deleted FROM profile_attributes WHERE workspace_id = ?"
                    " AND mpid = ? ORDER BY name", (self.ws, mpid))]

    # Merges (kaon.identity.merge): what a merge moves and how it is undone.
    def move_identities(self, source: int, target: int) -> None:
        self.conn.execute("UPDATE identities SET mpid = ? WHERE workspace_id = ? AND mpid = ?",
                          (target, self.ws, source))

    def move_identity(self, identity: Identity, source: int, target: int) -> None:
        """Give `identity` back from `source` to `target` (unmerge); nothing if `source` no longer holds it."""
        self.conn.execute("UPDATE identities SET mpid = ? WHERE workspace_id = ? AND identity_type = ? AND value = ?"
                          " AND mpid = ?", (target, self.ws, identity[0], identity[1], source))

    def drop_attributes(self, mpid: int) -> None:
        """Remove every attribute row of the profile, tombstones included (the merged profile's, once moved)."""
        self.conn.execute("DELETE FROM profile_attributes WHERE workspace_id = ? AND mpid = ?", (self.ws, mpid))

    def set_summary(self, mpid: int, *, first_seen_ms: int, last_seen_ms: int, session_count: int,
                    is_opted_out: bool, consent: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE profiles SET first_seen_ms = ?, last_seen_ms = ?, session_count = ?, is_opted_out = ?,"
            " consent = ? WHERE workspace_id = ? AND mpid = ?",
            (first_seen_ms, last_seen_ms, session_count, int(is_opted_out), _text(consent), self.ws, mpid),
        )

    def set_merged_into(self, mpid: int, survivor: int | None) -> None:
        self.conn.execute("UPDATE profiles SET merged_into = ? WHERE workspace_id = ? AND mpid = ?",
                          (survivor, self.ws, mpid))

    def restore_survivor(self, mpid: int, before: dict[str, Any], merged: dict[str, Any]) -> None:
        """The survivor as it was before a merge (a `row()` snapshot), less what it gained from `merged` since;
        its last seen is restored unless it moved on since the merge."""
        d = self.conn.dialect
        self.conn.execute(
            f"UPDATE profiles SET first_seen_ms = ?, session_count = {d.greatest('0', 'session_count - ?')},"
            " is_opted_out = ?, consent = ?, last_seen_ms = CASE WHEN last_seen_ms = ? THEN ? ELSE last_seen_ms END"
            " WHERE workspace_id = ? AND mpid = ?",
            (before["first_seen_ms"], merged["session_count"], int(before["is_opted_out"]),
             _text(before["consent"]), max(before["last_seen_ms"], merged["last_seen_ms"]),
             before["last_seen_ms"], self.ws, mpid),
        )

    def add_merge(self, survivor: int, merged: int, *, reason: str, actor: str, now_ms: int,
                  snapshot: bytes) -> int:
        """The audit row of a merge; returns its id."""
        cursor = self.conn.execute(
            "INSERT INTO merges (workspace_id, survivor_mpid, merged_mpid, reason, actor, merged_ms, snapshot)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (self.ws, survivor, merged, reason, actor, now_ms, snapshot),
        )
        return int(cursor.fetchone()[0])

    def merge_record(self, merge_id: int) -> tuple[int, int, bytes, int | None] | None:
        """(survivor, merged, snapshot, undone_ms) of a merge of this workspace."""
        row = self.conn.execute(
            "SELECT survivor_mpid, merged_mpid, snapshot, undone_ms FROM merges WHERE workspace_id = ? AND id = ?",
            (self.ws, merge_id)).fetchone()
        if row is None:
            return None
        return int(row[0]), int(row[1]), bytes(row[2]), None if row[3] is None else int(row[3])

    def open_merge_of(self, merged: int) -> int | None:
        """The id of a merge (not undone) that merged this profile into another."""
        row = self.conn.execute(
            "SELECT id FROM merges WHERE workspace_id = ? AND merged_mpid = ? AND undone_ms IS NULL",
            (self.ws, merged)).fetchone()
        return None if row is None else int(row[0])

    def latest_open_merge_into(self, survivor: int) -> int | None:
        """The id of the latest merge (not undone) into this profile."""
        row = self.conn.execute(
            "SELECT id FROM merges WHERE workspace_id = ? AND survivor_mpid = ? AND undone_ms IS NULL"
            " ORDER BY id DESC LIMIT 1", (self.ws, survivor)).fetchone()
        return None if row is None else int(row[0])

    def mark_undone(self, merge_id: int, *, actor: str, now_ms: int) -> None:
        self.conn.execute("UPDATE merges SET undone_ms = ?, undone_by = ? WHERE workspace_id = ? AND id = ?",
                          (now_ms, actor, self.ws, merge_id))

    def merges_of(self, mpid: int, limit: int = -1, after: int | None = None) -> list[dict[str, Any]]:
        """Merges into or of this profile, newest first; `after` is the merge id last shown (limit -1: all)."""
        rows = self.conn.execute(
            "SELECT id, survivor_mpid, merged_mpid, reason, actor, merged_ms, undone_ms, undone_by FROM merges"
            " WHERE workspace_id = ? AND (survivor_mpid = ? OR merged_mpid = ?) AND id < ? ORDER BY id DESC LIMIT ?",
            (self.ws, mpid, mpid, 2**63 - 1 if after is None else after, rows_limit(limit)),
        )
        return [{"merge_id": i, "survivor_mpid": str(s), "merged_mpid": str(m), "reason": r, "actor": a,
                 "merged_unixtime_ms": t, "undone_unixtime_ms": u, "undone_by": ub}
                for i, s, m, r, a, t, u, ub in rows]

    # Alias requests (kaon.identity.alias)
    def was_alias_source(self, mpid: int) -> bool:
        return self.conn.execute("SELECT 1 FROM alias_requests WHERE workspace_id = ? AND source_mpid = ? LIMIT 1",
                                 (self.ws, mpid)).fetchone() is not None

    def was_alias_destination(self, mpid: int) -> bool:
        return self.conn.execute("SELECT 1 FROM alias_requests WHERE workspace_id = ? AND destination_mpid = ?"
                                 " LIMIT 1", (self.ws, mpid)).fetchone() is not None

    def alias_overlaps(self, source: int, start_ms: int, end_ms: int) -> bool:
        """True when the source was already aliased for a window overlapping [start, end]."""
        return self.conn.execute(
            "SELECT 1 FROM alias_requests WHERE workspace_id = ? AND source_mpid = ? AND start_ms <= ? AND end_ms >= ?"
            " LIMIT 1", (self.ws, source, end_ms, start_ms)).fetchone() is not None

    def add_alias_request(self, source: int, destination: int, start_ms: int, end_ms: int, *, now_ms: int,
                          due_ms: int) -> int:
        cursor = self.conn.execute(
            "INSERT INTO alias_requests (workspace_id, source_mpid, destination_mpid, start_ms, end_ms, requested_ms,"
            " due_ms) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (self.ws, source, destination, start_ms, end_ms, now_ms, due_ms),
        )
        return int(cursor.fetchone()[0])


# (name, value, updated_ms, deleted): one row of `profile_attributes`.
AttributeRow = tuple[str, Any, int, bool]


class AliasRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    workspace_id: str
    source_mpid: int
    destination_mpid: int
    start_ms: int
    end_ms: int
    done_ms: int | None


def alias_request(conn: Conn, alias_id: int) -> AliasRequest | None:
    row = conn.execute("SELECT workspace_id, source_mpid, destination_mpid, start_ms, end_ms, done_ms FROM"
                       " alias_requests WHERE id = ?", (alias_id,)).fetchone()
    if row is None:
        return None
    ws, source, destination, start, end, done = row
    return AliasRequest(id=alias_id, workspace_id=str(ws), source_mpid=int(source), destination_mpid=int(destination),
                        start_ms=int(start), end_ms=int(end), done_ms=None if done is None else int(done))


def finish_alias(conn: Conn, alias_id: int, *, now_ms: int, events_copied: int) -> None:
    conn.execute("UPDATE alias_requests SET done_ms = ?, events_copied = ? WHERE id = ?",
                 (now_ms, events_copied, alias_id))


def due_aliases(conn: Conn, now_ms: int, limit: int = 100) -> list[int]:
    """Ids of alias requests not done and due by now, oldest first (every workspace)."""
    return [int(r[0]) for r in conn.execute(
        "SELECT id FROM alias_requests WHERE done_ms IS NULL AND due_ms <= ? ORDER BY id LIMIT ?", (now_ms, limit))]


# Data subject requests (kaon.governance.dsr_*): the person as the identity tables know them, their export, erasure.
def _flatten(value: Any) -> Iterable[str]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def find_subject(conn: Conn, workspace_id: str, mpids: set[int], identities: set[Identity]) -> Subject:
    """The profiles named by mpid or holding these identities, their survivors and every tombstone merged into
    them; with the identities they hold and their attribute values (no events: `kaon.store.events` adds them)."""
    ws = workspace_id
    found = set(mpids) | set(ProfileStore(conn, ws).owners(identities).values())
    # Up the merge chain to survivors, then down to every tombstone of each survivor.
    frontier = set(found)
    while frontier:
        rows = conn.execute(f"SELECT merged_into FROM profiles WHERE workspace_id = ? AND mpid IN ({marks(frontier)})"
                            " AND merged_into IS NOT NULL", (ws, *sorted(frontier))).fetchall()
        frontier = {int(r[0]) for r in rows} - found
        found |= frontier
    frontier = set(found)
    while frontier:
        rows = conn.execute(f"SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IN ({marks(frontier)})",
                            (ws, *sorted(frontier))).fetchall()
        frontier = {int(r[0]) for r in rows} - found
        found |= frontier
    held, values, known = set(identities), set[str](), set[int]()
    for chunk in chunks(sorted(found)):
        known |= {int(m) for (m,) in conn.execute(
            f"SELECT mpid FROM profiles WHERE workspace_id = ? AND mpid IN ({marks(chunk)})", (ws, *chunk))}
        held |= {(str(t), str(v)) for t, v in conn.execute(
            f"SELECT identity_type, value FROM identities WHERE workspace_id = ? AND mpid IN ({marks(chunk)})",
            (ws, *chunk))}
        values |= {s for (raw,) in conn.execute(
            f"SELECT value FROM profile_attributes WHERE workspace_id = ? AND mpid IN ({marks(chunk)})", (ws, *chunk))
            for s in _flatten(_decode.decode(raw))}
    return Subject(workspace_id=ws, mpids=known, identities=held, attribute_values=values, event_ids=[])


def export_subject(conn: Conn, subject: Subject) -> dict[str, list[dict[str, Any]]]:
    """The person's profiles (by creation), identities (by type and value) and attributes held (by name)."""
    ws, mpids = subject.workspace_id, sorted(subject.mpids)
    in_mpids = f"mpid IN ({marks(mpids)})"
    profiles = [{"mpid": str(m), "created_ms": c, "first_seen_ms": f, "last_seen_ms": last, "session_count": n,
                 "is_opted_out": bool(o), "consent": _decoded(consent), "merged_into": None if into is None
                 else str(into)} for m, c, f, last, n, o, consent, into in conn.execute(
        "SELECT mpid, created_ms, first_seen_ms, last_seen_ms, session_count, is_opted_out, consent, merged_into"
        f" FROM profiles WHERE workspace_id = ? AND {in_mpids} ORDER BY created_ms", (ws, *mpids))]
    identities = [{"mpid": str(m), "identity_type": t, "value": v, "first_seen_ms": s} for m, t, v, s in conn.execute(
        f"SELECT mpid, identity_type, value, first_seen_ms FROM identities WHERE workspace_id = ? AND {in_mpids}"
        " ORDER BY identity_type, value", (ws, *mpids))]
    attributes = [{"mpid": str(m), "name": n, "value": _decoded(v), "updated_ms": u} for m, n, v, u in conn.execute(
        "SELECT mpid, name, value, updated_ms FROM profile_attributes WHERE workspace_id = ? AND deleted = 0"
        f" AND {in_mpids} ORDER BY name", (ws, *mpids))]
    return {"profiles": profiles, "identities": identities, "attributes": attributes}


def _decoded(raw: bytes | str) -> Any:
    try:
        return _decode.decode(raw)
    except msgspec.DecodeError:
        return None


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the person's profiles, identities, attributes, merge audit rows and alias requests; rows per table."""
    ws, mpids = subject.workspace_id, sorted(subject.mpids)
    in_mpids = f"IN ({marks(mpids)})"
    counts: dict[str, int] = {}

    def run(name: str, sql: str, args: tuple[Any, ...]) -> None:
        counts[name] = counts.get(name, 0) + conn.execute(sql, args).rowcount

    d = conn.dialect
    # A merge's snapshot holds the merged profile's identities and attributes: theirs if it names a value.
    snapshot_match, snapshot_args = contains_any(d, f"lower({d.text('snapshot')})", subject.needles())
    run("merges", f"DELETE FROM merges WHERE workspace_id = ? AND (survivor_mpid {in_mpids} OR merged_mpid"
                  f" {in_mpids} OR {snapshot_match})", (ws, *mpids, *mpids, *snapshot_args))
    run("alias_requests", f"DELETE FROM alias_requests WHERE workspace_id = ? AND (source_mpid {in_mpids} OR"
                          f" destination_mpid {in_mpids})", (ws, *mpids, *mpids))
    run("profile_attributes", f"DELETE FROM profile_attributes WHERE workspace_id = ? AND mpid {in_mpids}",
        (ws, *mpids))
    run("identities", f"DELETE FROM identities WHERE workspace_id = ? AND mpid {in_mpids}", (ws, *mpids))
    for identity_type, value in sorted(subject.identities):
        run("identities", "DELETE FROM identities WHERE workspace_id = ? AND identity_type = ? AND value = ?",
            (ws, identity_type, value))
    run("profiles", f"DELETE FROM profiles WHERE workspace_id = ? AND mpid {in_mpids}", (ws, *mpids))
    return counts
