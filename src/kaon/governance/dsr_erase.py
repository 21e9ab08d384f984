"""Erasure in the main store: everything held about a person, found from their identities, in one transaction.

The person is found by the identity owner (profiles, through identities and the merge chain) and the events owner
(their events, with the message ids and batches those came in); each owner then erases its own tables.
"""

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from kaon.governance.dsr_model import MPID
from kaon.identity import store as identity_store
from kaon.store import dedup, events, metrics
from kaon.store.sql import Conn
from kaon.store.subject import Subject

_json = msgspec.json.Encoder()


def _ids(values: Iterable[object]) -> str:
    return _json.encode(sorted(values, key=str)).decode()


def find_subject(conn: Conn, workspace_id: str, identities: dict[str, str]) -> Subject:
    """The profiles owning these identities (or the mpid), their survivors and every tombstone merged into them,
    with their events."""
    mpids = {int(v) for t, v in identities.items() if t == MPID}
    held = {(t, v) for t, v in identities.items() if t != MPID}
    return events.with_events(conn, identity_store.find_subject(conn, workspace_id, mpids, held))


def _contains_any(column: str, needles: list[str]) -> tuple[str, list[str]]:
    """SQL matching a text/blob column (lower-cased) holding any needle; `0` when there are none."""
    if not needles:
        return "0", []
    return "(" + " OR ".join(f"instr(lower(CAST({column} AS TEXT)), ?) > 0" for _ in needles) + ")", needles


def _run(conn: Conn, counts: dict[str, int], name: str, sql: str, args: tuple[Any, ...]) -> None:
    counts[name] = counts.get(name, 0) + conn.execute(sql, args).rowcount


# moves to kaon.governance.quarantine_store.erase_subject
def _erase_quarantine(conn: Conn, subject: Subject) -> dict[str, int]:
    """Quarantined batches (the original batch, its reasons and blocked positions in one row): theirs if the batch
    or the reasons hold an identity value, the batch names their mpid, or it carries one of their events (matched
    by source message id)."""
    counts: dict[str, int] = {}
    match, args = _contains_any("(CAST(batch AS TEXT) || ' ' || reasons)", subject.needles() + subject.mpid_needles())
    _run(conn, counts, "quarantine",
         f"DELETE FROM quarantine WHERE workspace_id = ? AND ({match} OR EXISTS (SELECT 1 FROM"
         " json_each(CAST(quarantine.batch AS TEXT), '$.events') AS e WHERE json_extract(e.value,"
         " '$.data.source_message_id') IN (SELECT value FROM json_each(?))))",
         (subject.workspace_id, *args, _ids(subject.source_message_ids)))
    return counts


# moves to kaon.delivery.store.erase_subject
def _erase_delivery(conn: Conn, subject: Subject) -> dict[str, int]:
    ws, mpids, event_ids = subject.workspace_id, _ids(subject.mpids), _ids(subject.event_ids)
    counts: dict[str, int] = {}
    in_list = "(SELECT value FROM json_each(?))"
    jobs = f"(SELECT id FROM delivery_jobs WHERE event_id IN {in_list} OR (workspace_id = ? AND mpid IN {in_list}))"
    _run(conn, counts, "delivery_pending", f"DELETE FROM delivery_pending WHERE job_id IN {jobs}",
         (event_ids, ws, mpids))
    _run(conn, counts, "delivery_attempts", f"DELETE FROM delivery_attempts WHERE job_id IN {jobs}",
         (event_ids, ws, mpids))
    _run(conn, counts, "delivery_jobs", f"DELETE FROM delivery_jobs WHERE id IN {jobs}", (event_ids, ws, mpids))
    _run(conn, counts, "delivery_drops", f"DELETE FROM delivery_drops WHERE event_id IN {in_list}", (event_ids,))
    return counts


# moves to kaon.governance.consent_store.erase_subject
def _erase_consent(conn: Conn, subject: Subject) -> dict[str, int]:
    counts: dict[str, int] = {}
    _run(conn, counts, "consent_history", "DELETE FROM consent_history WHERE workspace_id = ? AND mpid IN (SELECT"
                                          " value FROM json_each(?))", (subject.workspace_id, _ids(subject.mpids)))
    return counts


# moves to kaon.governance.catalog_store.erase_subject
def _erase_catalog(conn: Conn, subject: Subject) -> dict[str, int]:
    counts: dict[str, int] = {}
    match, args = _contains_any("value", subject.needles())
    _run(conn, counts, "catalog_examples",
         f"DELETE FROM catalog_examples WHERE workspace_id = ? AND (value IN (SELECT value FROM json_each(?)) OR"
         f" {match})", (subject.workspace_id, _ids(sorted(subject.all_values())), *args))
    return counts


# Each owner's erasure; they may run in any order (the subject carries what they match by).
ERASERS: tuple[Callable[[Conn, Subject], dict[str, int]], ...] = (
    _erase_quarantine,
    dedup.erase_subject,
    events.erase_subject,
    _erase_delivery,
    identity_store.erase_subject,
    _erase_consent,
    metrics.erase_subject,
    _erase_catalog,
)


def erase(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the person's rows from every table of the main store that holds personal data; counts per table.

    Runs inside the caller's transaction. The connection should have `secure_delete` on, so freed pages are
    zeroed rather than left readable in the file.
    """
    counts: dict[str, int] = {}
    for erase_subject in ERASERS:
        for table, n in erase_subject(conn, subject).items():
            counts[table] = counts.get(table, 0) + n
    return {k: v for k, v in counts.items() if v}
