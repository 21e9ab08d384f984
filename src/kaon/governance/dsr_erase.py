"""Erasure in the main store: everything held about a person, found from their identities, in one transaction."""

from collections.abc import Iterable
from typing import Any

import msgspec

from kaon.governance.dsr_model import MPID
from kaon.store.sql import Conn
from kaon.store.subject import Subject

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


def _ids(values: Iterable[object]) -> str:
    return _json.encode(sorted(values, key=str)).decode()


def _flatten(value: Any) -> Iterable[str]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def find_subject(conn: Conn, workspace_id: str, identities: dict[str, str]) -> Subject:
    """The profiles owning these identities (or the mpid), their survivors and every tombstone merged into them."""
    ws = workspace_id
    found: set[int] = set()
    for identity_type, value in identities.items():
        if identity_type == MPID:
            found.add(int(value))
            continue
        row = conn.execute("SELECT mpid FROM identities WHERE workspace_id = ? AND identity_type = ? AND value = ?",
                           (ws, identity_type, value)).fetchone()
        if row is not None:
            found.add(int(row[0]))
    # Up the merge chain to survivors, then down to every tombstone of each survivor.
    frontier = set(found)
    while frontier:
        rows = conn.execute("SELECT merged_into FROM profiles WHERE workspace_id = ? AND mpid IN (SELECT value"
                            " FROM json_each(?)) AND merged_into IS NOT NULL", (ws, _ids(frontier))).fetchall()
        frontier = {int(r[0]) for r in rows} - found
        found |= frontier
    frontier = set(found)
    while frontier:
        rows = conn.execute("SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IN (SELECT value"
                            " FROM json_each(?))", (ws, _ids(frontier))).fetchall()
        frontier = {int(r[0]) for r in rows} - found
        found |= frontier
    mpids = {m for m in found if conn.execute("SELECT 1 FROM profiles WHERE workspace_id = ? AND mpid = ?",
                                              (ws, m)).fetchone() is not None}
    held = {(str(t), str(v)) for t, v in conn.execute(
        "SELECT identity_type, value FROM identities WHERE workspace_id = ? AND mpid IN (SELECT value FROM"
        " json_each(?))", (ws, _ids(mpids)))}
    held |= {(t, v) for t, v in identities.items() if t != MPID}
    values = {s for (raw,) in conn.execute(
        "SELECT value FROM profile_attributes WHERE workspace_id = ? AND mpid IN (SELECT value FROM json_each(?))",
        (ws, _ids(mpids))) for s in _flatten(_decode.decode(raw))}
    events = [int(r[0]) for r in conn.execute(
        "SELECT id FROM events WHERE workspace_id = ? AND mpid IN (SELECT value FROM json_each(?)) ORDER BY id",
        (ws, _ids(mpids)))]
    return Subject(workspace_id=ws, mpids=mpids, identities=held, attribute_values=values, event_ids=events)


def _contains_any(column: str, needles: list[str]) -> tuple[str, list[str]]:
    """SQL matching a text/blob column (lower-cased) holding any needle; `0` when there are none."""
    if not needles:
        return "0", []
    return "(" + " OR ".join(f"instr(lower(CAST({column} AS TEXT)), ?) > 0" for _ in needles) + ")", needles


def erase(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the person's rows from every table of the main store that holds personal data; counts per table.

    Runs inside the caller's transaction. The connection should have `secure_delete` on, so freed pages are
    zeroed rather than left readable in the file.
    """
    ws, mpids, events = subject.workspace_id, _ids(subject.mpids), _ids(subject.event_ids)
    needles = subject.needles()
    counts: dict[str, int] = {}

    def run(name: str, sql: str, args: tuple[Any, ...]) -> None:
        counts[name] = counts.get(name, 0) + conn.execute(sql, args).rowcount

    in_events = "(SELECT value FROM json_each(?))"
    # Quarantined batches (the original batch, its reasons and blocked positions in one row): theirs if the batch
    # or the reasons hold an identity value, the batch names their mpid, or it carries one of their events
    # (matched by source message id, so this runs while their events are still there).
    quarantine_match, quarantine_args = _contains_any("(CAST(batch AS TEXT) || ' ' || reasons)",
                                                      needles + subject.mpid_needles())
    run("quarantine", f"DELETE FROM quarantine WHERE workspace_id = ? AND ({quarantine_match} OR EXISTS (SELECT 1"
                      f" FROM json_each(CAST(quarantine.batch AS TEXT), '$.events') AS e WHERE"
                      f" json_extract(e.value, '$.data.source_message_id') IN (SELECT source_message_id FROM events"
                      f" WHERE workspace_id = ? AND id IN {in_events})))", (ws, *quarantine_args, ws, events))
    batch_match, batch_args = _contains_any("body", needles + subject.mpid_needles())
    run("message_ids", f"DELETE FROM message_ids WHERE workspace_id = ? AND source_message_id IN (SELECT"
                       f" source_message_id FROM events WHERE id IN {in_events})", (ws, events))
    run("batches", f"DELETE FROM batches WHERE id IN (SELECT batch_id FROM events WHERE id IN {in_events})"
                   f" OR (workspace_id = ? AND {batch_match})", (events, ws, *batch_args))
    jobs = f"(SELECT id FROM delivery_jobs WHERE event_id IN {in_events} OR (workspace_id = ? AND mpid IN" \
           f" {in_events}))"
    run("delivery_pending", f"DELETE FROM delivery_pending WHERE job_id IN {jobs}", (events, ws, mpids))
    run("delivery_attempts", f"DELETE FROM delivery_attempts WHERE job_id IN {jobs}", (events, ws, mpids))
    run("delivery_jobs", f"DELETE FROM delivery_jobs WHERE id IN {jobs}", (events, ws, mpids))
    run("delivery_drops", f"DELETE FROM delivery_drops WHERE event_id IN {in_events}", (events,))
    run("events", f"DELETE FROM events WHERE id IN {in_events}", (events,))
    snapshot_match, snapshot_args = _contains_any("snapshot", needles)
    run("merges", f"DELETE FROM merges WHERE workspace_id = ? AND (survivor_mpid IN {in_events} OR merged_mpid IN"
                  f" {in_events} OR {snapshot_match})", (ws, mpids, mpids, *snapshot_args))
    run("alias_requests", f"DELETE FROM alias_requests WHERE workspace_id = ? AND (source_mpid IN {in_events} OR"
                          f" destination_mpid IN {in_events})", (ws, mpids, mpids))
    run("consent_history", f"DELETE FROM consent_history WHERE workspace_id = ? AND mpid IN {in_events}",
        (ws, mpids))
    run("profile_attributes", f"DELETE FROM profile_attributes WHERE workspace_id = ? AND mpid IN {in_events}",
        (ws, mpids))
    run("identities", f"DELETE FROM identities WHERE workspace_id = ? AND mpid IN {in_events}", (ws, mpids))
    for identity_type, value in subject.identities:
        run("identities", "DELETE FROM identities WHERE workspace_id = ? AND identity_type = ? AND value = ?",
            (ws, identity_type, value))
    run("profiles", f"DELETE FROM profiles WHERE workspace_id = ? AND mpid IN {in_events}", (ws, mpids))
    rejection_match, rejection_args = _contains_any("body", needles)
    # Messages name ids too: a refused alias names its previousId, userId and both profiles ("profile 123 (").
    message_match, message_args = _contains_any("message", subject.message_needles()
                                                 + [f"profile {m} " for m in sorted(subject.mpids)])
    run("rejections", f"DELETE FROM rejections WHERE (workspace_id = ? OR workspace_id IS NULL) AND"
                      f" ({rejection_match} OR {message_match})", (ws, *rejection_args, *message_args))
    examples = sorted(subject.all_values())
    example_match, example_args = _contains_any("value", needles)
    run("catalog_examples", f"DELETE FROM catalog_examples WHERE workspace_id = ? AND (value IN (SELECT value FROM"
                            f" json_each(?)) OR {example_match})", (ws, _ids(examples), *example_args))
    return {k: v for k, v in counts.items() if v}
