"""The sync worker: turns audience membership changes into deliveries for every audience connection.

It runs on a thread of the deliver stage (one per cluster on PostgreSQL). Each step handles one connection in one
short transaction:

1. the membership changes recorded after the connection's `change_cursor`, up to the id `settled` found
   committed (so no later-committing change is skipped): an entry becomes an `add` with the profile's
   identities (when the connection's rules let it through), an exit a `delete` naming the identities that were
   added; a trigger connection sends every change as an event;
2. while the initial sync runs: the next page of current members (mpid order) not yet added;
3. while disconnecting (or once the audience is deleted): the next page of what was added, as `delete`s; the
   connection row goes when nothing is left.

Deliveries are ordinary delivery jobs of the output (retries, dead letters, replay, per-hour status, alerts),
queued in change order, so an exit never overtakes its entry: the delivery engine keeps each profile's jobs for
an output in order. The cursors move in the same transaction as the jobs, so a crash repeats nothing and loses
nothing.
"""

import logging
import time
from collections import Counter
from typing import Any

from kaon.activation.membership import ADD, DELETE, membership_event
from kaon.activation.settings import ConnectionSettings, parse_settings
from kaon.activation.store import (
    DISCONNECTING,
    LIVE,
    SYNC,
    SYNCING,
    AudienceConnection,
    ConnectionStore,
    IdentityUpdates,
    SyncedStore,
    connections_to_run,
)
from kaon.audiences.engine import Compiled, compile_calculated, current_values
from kaon.audiences.store import DefinitionStore, MemberStore, StateStore
from kaon.clock import Clock, now_ms
from kaon.connections.evaluate import ProfileFacts, evaluate
from kaon.delivery import store as delivery_store
from kaon.destinations.base import Destination
from kaon.destinations.registry import destinations
from kaon.errors import NotFound
from kaon.identity.store import ProfileStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.metrics import hour_of
from kaon.store.outputs import Output, OutputStore
from kaon.store.sql import Conn, try_singleton_lock
from kaon.store.threads import StoreThread
from kaon.store.tx import transaction

_log = logging.getLogger("kaon.activation")
CHANGES_PER_STEP = 1_000
MEMBERS_PER_STEP = 1_000
SYNC_LOCK = 4_242_014  # one sync worker per cluster (PostgreSQL advisory lock)
PRUNE_EVERY_S = 10.0


def newest_identities(held: list[tuple[str, str, int]], wanted: frozenset[str] | None) -> dict[str, str]:
    """A profile's identities by type (the most recently linked value of each), of `wanted` types."""
    newest: dict[str, tuple[int, str]] = {}
    for kind, value, seen in held:
        if (wanted is None or kind in wanted) and (kind not in newest or seen >= newest[kind][0]):
            newest[kind] = (seen, value)
    return {kind: value for kind, (_, value) in sorted(newest.items())}


_UNKNOWN: Any = object()


class _Step:
    """One connection's step: its output, destination, settings, and what the step queued (for the counters)."""

    def __init__(self, conn: Conn, row: AudienceConnection, output: Output, destination: Destination,
                 now: int) -> None:
        self.conn, self.row, self.output, self.destination, self.now = conn, row, output, destination, now
        self.settings: ConnectionSettings = parse_settings(row.settings)
        self.rules = self.settings.parsed_rules()
        accepted = frozenset(destination.identity_types) if destination.identity_types else None
        chosen = frozenset(self.settings.identity_types) if self.settings.identity_types is not None else None
        self.wanted = chosen & accepted if chosen is not None and accepted is not None else (chosen or accepted)
        self.synced = SyncedStore(conn, row.workspace_id)
        self.profiles = ProfileStore(conn, row.workspace_id)
        self.counts: Counter[tuple[str, str]] = Counter()
        self._calculated: Compiled | None = None  # compiled once per step, for triggers' attributes
        # Read for the step's profiles at once (`prefetch`): identities, consent facts, what was synced.
        self._identities: dict[int, list[tuple[str, str, int]]] = {}
        self._facts: dict[int, tuple[dict[str, Any], bool]] = {}
        self._held: dict[int, dict[str, str] | None] = {}
        self._attributes: dict[int, dict[str, Any]] = {}  # triggers: the profiles' attributes, calculated ones won

    def prefetch(self, mpids: list[int]) -> None:
        todo = [m for m in set(mpids) if m not in self._identities]
        if not todo:
            return
        found = self.profiles.identities_of_many(todo)
        self._identities.update({m: found.get(m, []) for m in todo})
        self._facts.update({m: (c, out) for m, (c, out, _, _) in self.profiles.summary_of_many(todo).items()})
        if self.row.mode == SYNC:
            held = self.synced.of(self.row.id, todo)
            self._held.update({m: held.get(m) for m in todo if m not in self._held})
        else:
            attributes = self.profiles.attributes_of_many(todo)
            if self._calculated is None:
                self._calculated = compile_calculated(self.conn, self.row.workspace_id)
            states = StateStore(self.conn, self.row.workspace_id).load(todo) if self._calculated.calculated else {}
            for mpid in todo:
                values = current_values(self.conn, self.row.workspace_id, mpid, self.now, self._calculated,
                                        states.get(mpid, {})) if self._calculated.calculated else {}
                self._attributes[mpid] = {**attributes.get(mpid, {}),
                                          **{k: v for k, v in values.items() if v is not None}}

    def identities(self, mpid: int) -> dict[str, str]:
        if mpid not in self._identities:
            self.prefetch([mpid])
        return newest_identities(self._identities[mpid], self.wanted)

    def held(self, mpid: int) -> dict[str, str] | None:
        """The identities this connection last added for the profile (None: not added)."""
        found = self._held.get(mpid, _UNKNOWN)
        if found is _UNKNOWN:
            found = self._held[mpid] = self.synced.of(self.row.id, [mpid]).get(mpid)
        return found  # type: ignore[no-any-return]

    def _event(self, mpid: int, action: str, cause: str, at_ms: int, identities: dict[str, str],
               message_id: str) -> Any:
        attributes: dict[str, Any] = {}
        if self.row.mode != SYNC:  # a trigger carries the profile's attributes (calculated ones winning)
            if mpid not in self._attributes:
                self._identities.pop(mpid, None)
                self.prefetch([mpid])
            attributes = dict(self._attributes[mpid])
        return membership_event(workspace_id=self.row.workspace_id, connection_id=self.row.id,
                                audience_id=self.row.audience_id, audience_name=self.row.audience_name,
                                action=action, cause=cause, mpid=mpid, at_ms=at_ms, identities=identities,
                                attributes=attributes, message_id=message_id, sync=self.row.mode == SYNC,
                                output_settings=self.row.settings.get("output"))

    def _queue(self, event: Any, event_id: int, lane: int | None = None) -> None:
        """Queue the delivery; `lane`: the profile whose jobs it is ordered with (default: the event's)."""
        delivery_store.enqueue(self.conn, self.row.workspace_id, self.output.id, self.row.id, event_id,
                               event.mpid if lane is None else lane, self.now, event, numbered=self.row.mode == SYNC)
        self.counts[("queued", "")] += 1

    def _passes(self, event: Any, mpid: int) -> Any:
        """The event the rules forward (transformed), or None (counted as filtered, with the reason)."""
        if mpid not in self._facts:
            self._facts.update({m: (c, out) for m, (c, out, _, _) in self.profiles.summary_of_many([mpid]).items()})
        consent, opted_out = self._facts.get(mpid, ({}, False))
        facts = ProfileFacts(consent=consent, opted_out=opted_out)
        decision = evaluate(self.rules, event, facts)
        if decision.forward and decision.event is not None:
            return decision.event
        self.counts[("filtered", decision.reason)] += 1
        return None

    def add(self, mpid: int, cause: str, at_ms: int, message_id: str, event_id: int) -> None:
        identities = self.identities(mpid)
        held = self.held(mpid)
        if held is not None and held == identities:
            return  # already added with these identities
        if not identities:
            self.counts[("filtered", "no_identities")] += 1
            return
        event = self._passes(self._event(mpid, ADD, cause, at_ms, identities, message_id), mpid)
        if event is None:
            return
        if held is not None and (gone := {k: v for k, v in held.items() if identities.get(k) != v}):
            # An identity of a member changed: the vendor forgets the old value, then learns the new one.
            self._queue(self._event(mpid, DELETE, "identity_change", at_ms, gone, f"{message_id}-old"), event_id)
        self._queue(event, event_id)
        self.synced.put(self.row.id, mpid, identities, self.now)
        self._held[mpid] = identities

    def remove(self, mpid: int, cause: str, at_ms: int, message_id: str, event_id: int,
               held: dict[str, str] | None = None) -> None:
        if held is None:
            held = self.held(mpid)
        if held is None:
            return  # never added (filtered, no identities, or it entered and left before the initial sync)
        # A merged profile's removal names identities its survivor may hold now, and the survivor's add of them
        # follows: the removal goes in the survivor's lane, so a retried removal can never land after that add.
        lane = self.profiles.live(mpid) if cause == "merge" else None
        self._queue(self._event(mpid, DELETE, cause, at_ms, held, message_id), event_id, lane)
        self.synced.drop(self.row.id, mpid)
        self._held[mpid] = None

    def trigger(self, mpid: int, action: str, cause: str, at_ms: int, message_id: str, event_id: int) -> None:
        identities = self.identities(mpid)
        event = self._passes(self._event(mpid, action, cause, at_ms, identities, message_id), mpid)
        if event is not None:
            self._queue(event, event_id)

    def record_counts(self) -> None:
        hour = hour_of(self.now)
        delivery_store.add_output_counts(self.conn, Counter({
            (self.row.workspace_id, self.output.id, self.row.id, hour, metric, reason): n
            for (metric, reason), n in self.counts.items()}))


def settled(conn: Conn) -> tuple[int, int]:
    """The last membership change id and identity update id at or below which every row is committed. On
    PostgreSQL both tables are share-locked for this short transaction only: it waits for the transactions still
    writing them, and writers wait for it for an instant (not for a whole step); any later row gets a higher id."""
    with transaction(conn):
        members = MemberStore(conn, "")
        members.settle()
        updates = IdentityUpdates(conn)
        updates.settle()  # after audience_changes: the order every writer takes them in
        return members.last_change_id(), updates.last_id()


def step(conn: Conn, connection_id: str, workspace_id: str, now: int) -> bool:
    """One step of one connection in one transaction; True when it did something (more may wait)."""
    changes_until, updates_until = settled(conn)
    with transaction(conn):
        members = MemberStore(conn, workspace_id)
        updates = IdentityUpdates(conn)
        store = ConnectionStore(conn, workspace_id)
        row = store.find(connection_id, lock=True)
        if row is None:
            return False
        try:
            output = OutputStore(conn, workspace_id).output(row.output_id)
        except NotFound:  # the output was deleted: nothing can be sent or removed any more
            store.delete(row)
            return True
        destination = destinations().get(output.destination)
        if destination is None:
            return False  # its plugin is not installed here: wait (the jobs would have no worker)
        work = _Step(conn, row, output, destination, now)
        status, change_cursor, member_cursor = row.status, row.change_cursor, row.member_cursor
        progress = dict(row.progress)
        did = False
        if status != DISCONNECTING and DefinitionStore(conn, workspace_id).find("audience", row.audience_id) is None:
            status, did = DISCONNECTING, True  # the audience was deleted: what was sent is removed
        if status == DISCONNECTING:
            if row.mode == SYNC:
                sent = work.synced.page(row.id, MEMBERS_PER_STEP)
                for mpid, held in sent:
                    work.remove(mpid, "disconnected", now, f"{row.id}-off-{mpid}-{now}", 0, held)
                progress["members_removed"] = int(progress.get("members_removed", 0)) + len(sent)
                if sent:
                    store.advance(row, change_cursor=change_cursor, member_cursor=None, status=status,
                                  progress=progress, now_ms=now)
                    work.record_counts()
                    return True
            work.record_counts()
            store.delete(row)
            return True
        stream = members.changes(row.audience_id, CHANGES_PER_STEP, after=change_cursor, until=changes_until)
        work.prefetch([c["mpid"] for c in stream])
        for change in stream:
            mpid, at, cause, change_id = change["mpid"], change["at_unixtime_ms"], change["cause"], change["id"]
            message_id = f"{row.id}-{change_id}"
            if row.mode == SYNC:
                if change["action"] == "enter":
                    work.add(mpid, cause, at, message_id, -change_id)
                else:
                    work.remove(mpid, cause, at, message_id, -change_id)
            else:
                work.trigger(mpid, ADD if change["action"] == "enter" else DELETE, cause, at, message_id, -change_id)
            change_cursor, did = change_id, True
        update_cursor = row.update_cursor
        if row.mode == SYNC:
            # Members whose identities changed: the vendor forgets the values they lost and learns the new ones.
            noted = updates.after(workspace_id, update_cursor, CHANGES_PER_STEP, until=updates_until)
            work.prefetch([m for _, m in noted])
            for update_id, mpid in noted:
                if work.held(mpid) is not None:
                    if work.identities(mpid):
                        work.add(mpid, "identity_change", now, f"{row.id}-id-{update_id}", 0)
                    else:
                        work.remove(mpid, "identity_change", now, f"{row.id}-id-{update_id}", 0)
                elif work.identities(mpid) and members.is_member(row.audience_id, mpid):
                    # A member the output could not take (no identity it matches on) now has one.
                    work.add(mpid, "identity_change", now, f"{row.id}-id-{update_id}", 0)
                update_cursor, did = update_id, True
        if status == SYNCING:
            page = members.members(row.audience_id, MEMBERS_PER_STEP, after=member_cursor)
            work.prefetch([m for m, _ in page])
            for mpid, entered in page:
                if work.held(mpid) is None:
                    work.add(mpid, "connected", entered, f"{row.id}-initial-{mpid}", 0)
            progress["members_sent"] = int(progress.get("members_sent", 0)) + len(page)
            if page:
                member_cursor = page[-1][0]
            else:
                status, member_cursor = LIVE, None
                progress["finished_unixtime_ms"] = now
            did = True
        if did:
            store.advance(row, change_cursor=change_cursor, member_cursor=member_cursor, status=status,
                          progress=progress, now_ms=now, update_cursor=update_cursor)
            work.record_counts()
        return did


def run_some(conn: Conn, clock: Clock = now_ms, budget: int = 20) -> int:
    """Steps over every connection, at most `budget`; how many did something."""
    done = 0
    for row in connections_to_run(conn):
        while done < budget:
            try:
                if not step(conn, row.id, row.workspace_id, clock()):
                    break
            except Exception:
                _log.exception("audience connection %s failed; retried on the next pass", row.id)
                break
            done += 1
    return done


def run_all(conn: Conn, clock: Clock = now_ms) -> int:
    """Until no connection has work, then prune what every connection has read (tests, the CLI)."""
    total = 0
    while (done := run_some(conn, clock)):
        total += done
    prune(conn)
    return total


def prune(conn: Conn) -> int:
    with transaction(conn):
        return IdentityUpdates(conn).prune()


def _loop(url: str) -> None:
    db = Database(DatabaseUrl.parse(url))
    conn = db.connect()
    pruned = time.monotonic()
    while True:
        try:
            if not try_singleton_lock(conn, SYNC_LOCK):
                time.sleep(1.0)
                continue
            if time.monotonic() - pruned > PRUNE_EVERY_S:
                prune(conn)
                pruned = time.monotonic()
            if run_some(conn):
                continue
        except Exception:
            _log.exception("audience sync failed; retrying")
        time.sleep(0.05)


# Called by the deliver stage (kaon.delivery.service): this process runs the audience sync thread (started on first
# call, and again if it died).
ensure_sync_worker = StoreThread("kaon-audience-sync", _loop).ensure
