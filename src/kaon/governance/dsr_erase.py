"""Erasure in the main store: everything held about a person, found from their identities, in one transaction.

The person is found by the identity owner (profiles, through identities and the merge chain) and the events owner
(their events, with the message ids and batches those came in); each owner then erases its own tables.
"""

from collections.abc import Callable

from kaon.activation import store as activation_store
from kaon.audiences import store as audience_store
from kaon.delivery import store as delivery_store
from kaon.governance import catalog_store, consent_store, quarantine_store
from kaon.governance.dsr_model import MPID
from kaon.identity import store as identity_store
from kaon.store import dedup, events, metrics
from kaon.store.sql import Conn
from kaon.store.subject import Subject


def find_subject(conn: Conn, workspace_id: str, identities: dict[str, str]) -> Subject:
    """The profiles owning these identities (or the mpid), their survivors and every tombstone merged into them,
    with their events."""
    mpids = {int(v) for t, v in identities.items() if t == MPID}
    held = {(t, v) for t, v in identities.items() if t != MPID}
    return events.with_events(conn, identity_store.find_subject(conn, workspace_id, mpids, held))


# Each owner's erasure; they may run in any order (the subject carries what they match by).
ERASERS: tuple[Callable[[Conn, Subject], dict[str, int]], ...] = (
    quarantine_store.erase_subject,
    dedup.erase_subject,
    events.erase_subject,
    delivery_store.erase_subject,
    identity_store.erase_subject,
    consent_store.erase_subject,
    metrics.erase_subject,
    catalog_store.erase_subject,
    audience_store.erase_subject,
    activation_store.erase_subject,
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
