"""Merging two profiles in one transaction (with an audit row) and undoing a merge from that row.

What a merge moves to the survivor: identities; attributes (newest wins: for a name both hold, the value
or removal with the later update time is kept, the survivor's on a tie); consent (per purpose, the later timestamp
wins); first seen (earliest), last seen (latest), session count (sum), opt-out (opted out if either is);
the event history (events are re-keyed to the survivor) and the consent history rows. The merged profile stays
as a tombstone (`merged_into`), so its mpid keeps resolving to the survivor. The audit row keeps a snapshot of
everything the merge changed, which `unmerge` restores.
"""

from typing import Any

import msgspec

from kaon.errors import Conflict, NotFound
from kaon.governance.consent import ConsentHistory
from kaon.identity.store import AttributeRow, ProfileStore
from kaon.store.sql import Conn

_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


def merged_consent(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per regulation and purpose, the record with the later `timestamp_unixtime_ms` wins."""
    out: dict[str, Any] = {k: dict(v) for k, v in a.items()}
    for regulation, purposes in b.items():
        mine = out.setdefault(regulation, {})
        for purpose, record in purposes.items():
            current = mine.get(purpose)
            if current is None or (record.get("timestamp_unixtime_ms") or 0) > (
                current.get("timestamp_unixtime_ms") or 0
            ):
                mine[purpose] = record
    return out


def _row(raw: list[Any]) -> AttributeRow:
    """A snapshot's attribute row; snapshots written before removals were kept have no `deleted` flag."""
    name, value, updated = raw[0], raw[1], raw[2]
    return (str(name), value, int(updated), bool(raw[3]) if len(raw) > 3 else False)


def merge(conn: Conn, workspace_id: str, survivor: int, merged: int, *, reason: str,
          actor: str, now_ms: int) -> int:
    """Move `merged` into `survivor`; returns the audit row id. Call inside a transaction."""
    store = ProfileStore(conn, workspace_id)
    keep, gone = store.row(survivor), store.row(merged)
    if keep is None or gone is None:
        raise NotFound("both profiles must exist to merge")
    if keep["merged_into"] is not None or gone["merged_into"] is not None:
        raise Conflict("a merged profile cannot take part in another merge")
    history = ConsentHistory(conn, workspace_id)
    moved_consent = history.ids_of(merged)
    moved_events = [int(r[0]) for r in conn.execute(
        "SELECT id FROM events WHERE workspace_id = ? AND mpid = ?", (workspace_id, merged))]
    merged_attributes = store.attribute_rows(merged)
    survivor_rows = store.attribute_rows(survivor)
    snapshot = {
        "survivor": keep,
        "survivor_attributes": [list(row) for row in survivor_rows],
        "merged": gone,
        "merged_identities": store.identities(merged),
        "merged_attributes": [list(row) for row in merged_attributes],
        "moved_event_ids": moved_events,
        "moved_consent_ids": moved_consent,
    }
    conn.execute("UPDATE identities SET mpid = ? WHERE workspace_id = ? AND mpid = ?",
                 (survivor, workspace_id, merged))
    survivor_times = {name: updated for name, _, updated, _ in survivor_rows}
    for row in merged_attributes:
        held = survivor_times.get(row[0])
        # The survivor's value wins a tie, as documented; removals (tombstones) take part like values, so a
        # newer removal on either side wins over an older value on the other.
        if held is None or row[2] > held:
            store.put_attribute_row(survivor, row)
    conn.execute("DELETE FROM profile_attributes WHERE workspace_id = ? AND mpid = ?", (workspace_id, merged))
    conn.execute(
        "UPDATE profiles SET first_seen_ms = ?, last_seen_ms = ?, session_count = ?, is_opted_out = ?,"
        " consent = ? WHERE workspace_id = ? AND mpid = ?",
        (min(keep["first_seen_ms"], gone["first_seen_ms"]), max(keep["last_seen_ms"], gone["last_seen_ms"]),
         keep["session_count"] + gone["session_count"], int(keep["is_opted_out"] or gone["is_opted_out"]),
         _encode.encode(merged_consent(keep["consent"], gone["consent"])), workspace_id, survivor),
    )
    conn.execute("UPDATE events SET mpid = ? WHERE workspace_id = ? AND mpid = ?", (survivor, workspace_id, merged))
    history.move(moved_consent, merged, survivor)
    conn.execute("UPDATE profiles SET merged_into = ? WHERE workspace_id = ? AND mpid = ?",
                 (survivor, workspace_id, merged))
    cursor = conn.execute(
        "INSERT INTO merges (workspace_id, survivor_mpid, merged_mpid, reason, actor, merged_ms, snapshot)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (workspace_id, survivor, merged, reason, actor, now_ms, _encode.encode(snapshot)),
    )
    return int(cursor.fetchone()[0])


def unmerge(conn: Conn, workspace_id: str, merge_id: int, *, actor: str, now_ms: int) -> dict[str, Any]:
    """Restore the two profiles a merge joined, with their identities, attributes and events."""
    row = conn.execute(
        "SELECT survivor_mpid, merged_mpid, snapshot, undone_ms FROM merges WHERE workspace_id = ? AND id = ?",
        (workspace_id, merge_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"merge {merge_id} not found")
    survivor, merged, raw, undone = int(row[0]), int(row[1]), row[2], row[3]
    if undone is not None:
        raise Conflict(f"merge {merge_id} was already undone")
    store = ProfileStore(conn, workspace_id)
    current = store.row(survivor)
    assert current is not None
    if current["merged_into"] is not None:
        later = conn.execute(
            "SELECT id FROM merges WHERE workspace_id = ? AND merged_mpid = ? AND undone_ms IS NULL",
            (workspace_id, survivor)).fetchone()
        raise Conflict(f"profile {survivor} was merged again later: undo merge {later[0] if later else '?'} first")
    snap = _decode.decode(raw)
    gone, before = snap["merged"], snap["survivor"]
    for identity_type, value, _ in snap["merged_identities"]:
        conn.execute("UPDATE identities SET mpid = ? WHERE workspace_id = ? AND identity_type = ? AND value = ?"
                     " AND mpid = ?", (merged, workspace_id, identity_type, value, survivor))
    survivor_before = {row[0]: _row(row) for row in snap["survivor_attributes"]}
    survivor_now = {row[0]: row for row in store.attribute_rows(survivor)}
    for raw_row in snap["merged_attributes"]:
        row = _row(raw_row)
        name = row[0]
        store.put_attribute_row(merged, row)
        if survivor_now.get(name) == row:  # untouched since the merge brought it
            if name in survivor_before:
                store.put_attribute_row(survivor, survivor_before[name])
            else:
                store.forget_attribute(survivor, name)
    conn.execute(
        "UPDATE profiles SET merged_into = NULL, first_seen_ms = ?, last_seen_ms = ?, session_count = ?,"
        " is_opted_out = ?, consent = ? WHERE workspace_id = ? AND mpid = ?",
        (gone["first_seen_ms"], gone["last_seen_ms"], gone["session_count"], int(gone["is_opted_out"]),
         _encode.encode(gone["consent"]), workspace_id, merged),
    )
    # Fix: the survivor's last seen is restored too, unless it moved on since the merge (it used to keep the
    # merged profile's later last seen).
    conn.execute(
        "UPDATE profiles SET first_seen_ms = ?, session_count = MAX(0, session_count - ?), is_opted_out = ?,"
        " consent = ?, last_seen_ms = CASE WHEN last_seen_ms = ? THEN ? ELSE last_seen_ms END"
        " WHERE workspace_id = ? AND mpid = ?",
        (before["first_seen_ms"], gone["session_count"], int(before["is_opted_out"]),
         _encode.encode(before["consent"]), max(before["last_seen_ms"], gone["last_seen_ms"]),
         before["last_seen_ms"], workspace_id, survivor),
    )
    moved = snap["moved_event_ids"]
    for start in range(0, len(moved), 500):
        chunk = moved[start:start + 500]
        conn.execute(
            f"UPDATE events SET mpid = ? WHERE workspace_id = ? AND mpid = ? AND id IN ({','.join('?' * len(chunk))})",
            (merged, workspace_id, survivor, *chunk),
        )
    # Consent history rows the merge brought go back (snapshots from before consent history hold none).
    ConsentHistory(conn, workspace_id).move(snap.get("moved_consent_ids", []), survivor, merged)
    conn.execute("UPDATE merges SET undone_ms = ?, undone_by = ? WHERE id = ?", (now_ms, actor, merge_id))
    return {"merge_id": merge_id, "restored": [str(survivor), str(merged)], "events_restored": len(moved)}
