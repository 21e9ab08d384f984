"""Merging two profiles in one transaction (with an audit row) and undoing a merge from that row.

What a merge moves to the survivor: identities; attributes (newest wins: for a name both hold, the value
or removal with the later update time is kept, the survivor's on a tie); consent (per purpose, the later timestamp
wins); first seen (earliest), last seen (latest), session count (sum), opt-out (opted out if either is);
the event history (events are re-keyed to the survivor) and the consent history rows; audience and calculated
attribute state (kaon.audiences.moves). The merged profile stays
as a tombstone (`merged_into`), so its mpid keeps resolving to the survivor. The audit row keeps a snapshot of
everything the merge changed, which `unmerge` restores.
"""

from typing import Any

import msgspec

from kaon.audiences import moves
from kaon.errors import Conflict, NotFound
from kaon.governance.consent_store import ConsentHistory
from kaon.identity.store import AttributeRow, ProfileStore
from kaon.store.events import EventStore
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
    events = EventStore(conn)
    moved_events = events.ids_of(workspace_id, merged)
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
    store.move_identities(merged, survivor)
    survivor_times = {name: updated for name, _, updated, _ in survivor_rows}
    for row in merged_attributes:
        held = survivor_times.get(row[0])
        # The survivor's value wins a tie, as documented; removals (tombstones) take part like values, so a
        # newer removal on either side wins over an older value on the other.
        if held is None or row[2] > held:
            store.put_attribute_row(survivor, row)
    store.drop_attributes(merged)
    store.set_summary(
        survivor, first_seen_ms=min(keep["first_seen_ms"], gone["first_seen_ms"]),
        last_seen_ms=max(keep["last_seen_ms"], gone["last_seen_ms"]),
        session_count=keep["session_count"] + gone["session_count"],
        is_opted_out=keep["is_opted_out"] or gone["is_opted_out"],
        consent=merged_consent(keep["consent"], gone["consent"]),
    )
    events.rekey(workspace_id, merged, survivor)
    history.move(moved_consent, merged, survivor)
    store.set_merged_into(merged, survivor)
    moves.merged(conn, workspace_id, survivor, merged, now_ms)
    return store.add_merge(survivor, merged, reason=reason, actor=actor, now_ms=now_ms,
                           snapshot=_encode.encode(snapshot))


def unmerge(conn: Conn, workspace_id: str, merge_id: int, *, actor: str, now_ms: int) -> dict[str, Any]:
    """Restore the two profiles a merge joined, with their identities, attributes and events."""
    store = ProfileStore(conn, workspace_id)
    record = store.merge_record(merge_id)
    if record is None:
        raise NotFound(f"merge {merge_id} not found")
    survivor, merged, raw, undone = record
    if undone is not None:
        raise Conflict(f"merge {merge_id} was already undone")
    current = store.row(survivor)
    assert current is not None
    if current["merged_into"] is not None:
        later = store.open_merge_of(survivor)
        raise Conflict(f"profile {survivor} was merged again later: undo merge {later or '?'} first")
    snap = _decode.decode(raw)
    gone, before = snap["merged"], snap["survivor"]
    for identity_type, value, _ in snap["merged_identities"]:
        store.move_identity((identity_type, value), survivor, merged)
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
    store.set_merged_into(merged, None)
    store.set_summary(merged, first_seen_ms=gone["first_seen_ms"], last_seen_ms=gone["last_seen_ms"],
                      session_count=gone["session_count"], is_opted_out=gone["is_opted_out"], consent=gone["consent"])
    # Fix: the survivor's last seen is restored too, unless it moved on since the merge (it used to keep the
    # merged profile's later last seen).
    store.restore_survivor(survivor, before, gone)
    moved = snap["moved_event_ids"]
    EventStore(conn).rekey(workspace_id, survivor, merged, ids=moved)
    # Consent history rows the merge brought go back (snapshots from before consent history hold none).
    ConsentHistory(conn, workspace_id).move(snap.get("moved_consent_ids", []), survivor, merged)
    moves.unmerged(conn, workspace_id, survivor, merged, now_ms)
    store.mark_undone(merge_id, actor=actor, now_ms=now_ms)
    return {"merge_id": merge_id, "restored": [str(survivor), str(merged)], "events_restored": len(moved)}
