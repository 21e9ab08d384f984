"""Erasure at the audience outputs: an erased person is taken out of every list a sync connection put them in.

The DSR worker finds, before the erasure (which forgets them), the identities each sync connection added for the
person's profiles (`find`, kept on the request's saved subject so a crashed run still knows them), then, after the
erasure, sends each output a removal of those identities through the output's own module (`remove`): the same
vendor payload a disconnect sends (Meta's DELETE on the custom audience's users, a Customer Match remove job, a
membership webhook `delete`), synchronously with a few bounded retries, so no identifier is kept once the request
completes. Outputs whose vendor gets the person's deletion anyway (kaon.governance.dsr_forward: Braze, Iterable,
Customer.io) or that Kaon scrubs itself (files, PostgreSQL) are not sent a removal. Each output's result is an
entry of the request's OpenDSR `extensions` (`sent`, `failed` with the reason, or `skipped`).
"""

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from kaon.activation.membership import DELETE, membership_event
from kaon.activation.store import ConnectionStore, SyncedStore
from kaon.delivery.outcomes import per_event
from kaon.delivery.send import send
from kaon.destinations.base import Destination
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome, SendResult
from kaon.destinations.registry import destinations
from kaon.governance.dsr_forward import ATTEMPTS, redacted, supports
from kaon.store.outputs import Output
from kaon.store.sql import Conn
from kaon.store.subject import Subject, SyncedMember

MAX_WAIT_S = 4.0
# Outputs whose rows Kaon scrubs itself (kaon.governance.dsr_scrub): the scrub takes the person out of their lists.
SCRUBBED = frozenset({"files", "postgres"})


def find(conn: Conn, subject: Subject) -> list[SyncedMember]:
    """What the workspace's sync connections added for the person's profiles, by connection."""
    connections = ConnectionStore(conn, subject.workspace_id)
    out: list[SyncedMember] = []
    for connection_id, mpid, identities in SyncedStore(conn, subject.workspace_id).of_profiles(subject.mpids):
        found = connections.find(connection_id)
        if found is None:
            continue
        out.append(SyncedMember(connection_id=found.id, output_id=found.output_id, audience_id=found.audience_id,
                                audience_name=found.audience_name, mpid=mpid, identities=identities,
                                output_settings=found.settings.get("output")))
    return out


def merge(into: Subject, other: Subject) -> None:
    """Add `other`'s synced members (a crashed run's findings) to `into`'s, once each."""
    held = {(m.connection_id, m.mpid) for m in into.synced}
    into.synced = [*into.synced, *(m for m in other.synced if (m.connection_id, m.mpid) not in held)]


def _events(subject: Subject, members: Sequence[SyncedMember], now_ms: int) -> list[DeliveryEvent]:
    return [membership_event(workspace_id=subject.workspace_id, connection_id=m.connection_id,
                             audience_id=m.audience_id, audience_name=m.audience_name, action=DELETE,
                             cause="erasure", mpid=m.mpid, at_ms=now_ms, identities=m.identities, attributes={},
                             message_id=f"erasure-{m.connection_id}-{m.mpid}",
                             output_settings=m.output_settings)
            for m in members]


def _attempt(destination: Destination, settings: Any, events: list[DeliveryEvent],
             client: httpx.Client) -> list[SendResult]:
    direct = destination.deliver(events, settings)
    if direct is not None:
        return direct
    requests = destination.transform(events, settings)
    return per_event(len(events), requests,
                     [send(client, destination, r, destination.policy.timeout_s) for r in requests])


def _send(destination: Destination, settings: Any, events: list[DeliveryEvent], client: httpx.Client,
          sleep: Callable[[float], None]) -> str | None:
    """Send the removals, retrying what the vendor asks to retry; None when all were taken, else why not."""
    pending = events
    error = "not sent"
    for attempt in range(ATTEMPTS):
        try:
            results = _attempt(destination, settings, pending, client)
        except Exception as failure:  # a bug in a module must become the entry's reason, not stop the erasure
            return f"{type(failure).__name__}: {failure}"
        aborted = [r for r in results if r.outcome == Outcome.ABORT]
        if aborted:
            return aborted[0].message or f"HTTP {aborted[0].status}"
        again = [(e, r) for e, r in zip(pending, results, strict=True)
                 if r.outcome in (Outcome.RETRY, Outcome.RETRY_PART)]
        if not again:
            return None
        pending = [e for e, _ in again]
        error = again[0][1].message or f"HTTP {again[0][1].status}"
        if attempt + 1 < ATTEMPTS:
            hinted = [r.retry_after_s for _, r in again if r.retry_after_s is not None]
            sleep(min(max(hinted, default=0.5 * 2 ** attempt), MAX_WAIT_S))
    return f"{error} (after {ATTEMPTS} attempts)"


def remove(subject: Subject, outputs: Sequence[Output], client: httpx.Client, now_ms: int,
           sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Send each output the removal of what its sync connections added for the person; one extension entry per
    output: `{domain, name, output_id, audiences, status, status_message}`."""
    by_output: dict[str, list[SyncedMember]] = {}
    for member in subject.synced:
        by_output.setdefault(member.output_id, []).append(member)
    known = {o.id: o for o in outputs}
    registry = destinations()
    entries: list[dict[str, Any]] = []
    for output_id, members in by_output.items():
        output = known.get(output_id)
        if (output is None or output.destination not in registry or output.destination in SCRUBBED
                or supports(output)):
            continue  # deleted (its connections went with it), or the person's deletion there covers its lists
        entry: dict[str, Any] = {"domain": output.destination, "name": output.name, "output_id": output.id,
                                 "audiences": sorted({m.audience_id for m in members})}
        if not output.enabled:
            entries.append({**entry, "status": "skipped", "status_message": "output disabled: no removal sent"})
            continue
        destination = registry[output.destination]
        try:
            settings = destination.parse_settings(output.settings)
            error = _send(destination, settings, _events(subject, members, now_ms), client, sleep)
        except Exception as failure:  # settings that no longer parse: recorded, the other outputs go on
            error = f"{type(failure).__name__}: {failure}"
        if error is None:
            entries.append({**entry, "status": "sent",
                            "status_message": f"{len(members)} audience removal(s) accepted"})
        else:
            values = subject.all_values() | {v for m in subject.synced for v in m.identities.values()}
            entries.append({**entry, "status": "failed", "status_message": redacted(error[:300], values)})
    return entries
