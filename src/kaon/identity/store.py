"""Profiles, their identities and attributes in the main store (SQL in one place)."""

import secrets
from collections.abc import Iterable
from typing import Any

import msgspec

from kaon.identity.extract import Identity
from kaon.store.sql import Conn

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


def new_mpid() -> int:
    """A random non-zero signed 63-bit id (mParticle's MPIDs are signed 64-bit; both signs appear)."""
    while True:
        mpid = secrets.randbits(63) - (1 << 62)
        if mpid:
            return mpid


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
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
        self.conn.execute(
            "UPDATE profiles SET first_seen_ms = MIN(first_seen_ms, ?), last_seen_ms = MAX(last_seen_ms, ?),"
            " session_count = session_count + ? WHERE workspace_id = ? AND mpid = ?",
            (first_ms, last_ms, sessions, self.ws, mpid),
        )

    def set_opted_out(self, mpid: int, opted_out: bool) -> None:
        self.conn.execute("UPDATE profiles SET is_opted_out = ? WHERE workspace_id = ? AND mpid = ?",
                          (int(opted_out), self.ws, mpid))

    def set_consent(self, mpid: int, consent: dict[str, Any]) -> None:
        self.conn.execute("UPDATE profiles SET consent = ? WHERE workspace_id = ? AND mpid = ?",
                          (_json.encode(consent), self.ws, mpid))

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
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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

    def identities(self, mpid: int) -> list[tuple[str, str, int]]:
        """(type, value, first_seen_ms) of a profile, in a stable order."""
        # Without INDEXED BY (and with ORDER BY) SQLite walks the primary key of the whole workspace.
        return sorted((str(t), str(v), int(s)) for t, v, s in self.conn.execute(
            "SELECT identity_type, value, first_seen_ms FROM identities INDEXED BY identities_by_profile"
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
            (self.ws, mpid, name, _json.encode(value), updated_ms),
        )

    def delete_attribute(self, mpid: int, name: str, updated_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO profile_attributes (workspace_id, mpid, name, value, updated_ms, deleted)"
            " VALUES (?, ?, ?, ?, ?, 1)"
            " ON CONFLICT (workspace_id, mpid, name) DO UPDATE SET value = excluded.value,"
            " updated_ms = excluded.updated_ms, deleted = 1 WHERE excluded.updated_ms >= profile_attributes.updated_ms",
            (self.ws, mpid, name, _json.encode(None), updated_ms),
        )

    def put_attribute_row(self, mpid: int, row: "AttributeRow") -> None:
        """Write a row exactly as given (merge and unmerge restore snapshots with it)."""
        name, value, updated_ms, deleted = row
        self.conn.execute(
            "INSERT INTO profile_attributes (workspace_id, mpid, name, value, updated_ms, deleted)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, mpid, name) DO UPDATE SET value = excluded.value,"
            " updated_ms = excluded.updated_ms, deleted = excluded.deleted",
            (self.ws, mpid, name, _json.encode(value), updated_ms, int(deleted)),
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

    def attribute_rows(self, mpid: int) -> list["AttributeRow"]:
        """Every attribute row of the profile, removals (tombstones) included, by name."""
        return [(str(name), _decode.decode(value), int(updated), bool(deleted))
                for name, value, updated, deleted in self.conn.execute(
                    "SELECT name, value, updated_ms, deleted FROM profile_attributes WHERE workspace_id = ?"
                    " AND mpid = ? ORDER BY name", (self.ws, mpid))]


# (name, value, updated_ms, deleted): one row of `profile_attributes`.
AttributeRow = tuple[str, Any, int, bool]
