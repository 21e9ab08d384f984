"""Activation: a new definition version's state is built from the stored history while live work goes on.

`activate` records the highest stored event id (after `EventStore.settle`, so the split is exact on PostgreSQL
too): live processing takes the events after it, the backfill those up to it, so each event counts once. The
backfill then reads the history in pages of event ids (only events inside the definition's window or lookback),
one short transaction per page, and records its progress. An audience then evaluates every live profile in mpid
order (live work evaluates those the backfill has passed), and becomes active.
"""

import logging
import time
from typing import Any

from kaon.audiences import calculated
from kaon.audiences.definition import parse_audience
from kaon.audiences.engine import Engine, compile_workspace, facts_of_rows
from kaon.audiences.errors import DefinitionError
from kaon.audiences.store import DefinitionRow, DefinitionStore, backfilling
from kaon.clock import Clock, now_ms
from kaon.identity.store import ProfileStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.events import EventStore
from kaon.store.sql import TRANSIENT_ERRORS, Conn, try_singleton_lock
from kaon.store.threads import StoreThread
from kaon.store.tx import transaction

_log = logging.getLogger("kaon.audiences")
EVENTS_PER_PAGE = 5_000
PROFILES_PER_PAGE = 1_000
FIRST_MPID = -(2**63)
BACKFILL_LOCK = 4_242_013  # one backfill worker per cluster (PostgreSQL advisory lock)


def activate(conn: Conn, row: DefinitionRow, body: dict[str, Any], now: int) -> DefinitionRow:
    """Start a backfill of `body`'s definition (in the caller's transaction)."""
    events = EventStore(conn)
    events.settle()
    return DefinitionStore(conn, row.workspace_id).start(row, hwm=events.last_id(), body=body, now_ms=now)


def _oldest(row: DefinitionRow, now: int) -> int | None:
    """Events at or before this time cannot count (the window or lookback); None: all history counts."""
    raw = row.body.get("active_definition") if row.kind == "calculated" else row.body.get("definition")
    if row.kind == "audience":
        return now - parse_audience(raw, row.body.get("lookback_days")).lookback_ms
    definition = calculated.parse_definition(raw)
    if definition.window_ms is not None:
        return now - definition.window_ms
    return None if definition.since_ms is None else definition.since_ms - 1


class _Retry(Exception):
    """The page's work is undone and taken again."""


def step(conn: Conn, row: DefinitionRow, now: int) -> bool:
    """One page of a backfill in one transaction; False when the definition needs no more work."""
    try:
        return _step(conn, row, now)
    except _Retry:
        return True


def _step(conn: Conn, row: DefinitionRow, now: int) -> bool:
    with transaction(conn):
        store = DefinitionStore(conn, row.workspace_id)
        current = store.find(row.kind, row.id, lock=True)
        if current is None or current.status != "backfilling" or current.version != row.version:
            return False
        row = current
        progress = dict(row.progress)
        if row.phase == "events":
            events = EventStore(conn)
            oldest = _oldest(row, now)
            compiled = compile_workspace(conn, row.workspace_id)
            # Only the event types (and names) its criteria may take are read (and counted in `events_total`);
            # `history_events` counts every event of the window or lookback the backfill covers.
            types = compiled.event_kinds(row.key)
            if progress.get("events_total") is None:
                progress["events_total"] = events.count_range(row.workspace_id, after_id=row.cursor,
                                                              max_id=row.hwm or 0, min_ts=oldest, kinds=types)
                progress["history_events"] = events.count_range(row.workspace_id, after_id=row.cursor,
                                                                max_id=row.hwm or 0, min_ts=oldest)
            page = events.scan(row.workspace_id, after_id=row.cursor, max_id=row.hwm or 0, min_ts=oldest,
                               limit=EVENTS_PER_PAGE, kinds=types)
            if not page:
                if row.kind == "calculated":
                    progress["finished_unixtime_ms"] = now
                    store.advance(row, cursor=row.cursor, phase="done", progress=progress, status="active")
                    reevaluate_readers(conn, row)
                else:
                    store.advance(row, cursor=FIRST_MPID, phase="profiles", progress=progress)
                return True
            by_profile: dict[int, list[tuple[int, int, bytes]]] = {}
            for event_id, mpid, ts, body in page:
                by_profile.setdefault(mpid, []).append((event_id, ts, body))
            engine = Engine(conn, row.workspace_id, compiled)
            states = engine.states.load(by_profile, lock=True)
            if any(engine.profiles.live(mpid) not in (mpid, None) for mpid in by_profile):
                # A merge committed after this page read its events (PostgreSQL): read them again, now keyed to
                # the survivor, in the next step.
                raise _Retry
            hwm = row.hwm or 0
            only = frozenset({row.key})
            for mpid in sorted(by_profile):
                state = states.get(mpid, {})
                _, changes = engine.refresh(mpid, state, facts_of_rows(by_profile[mpid]), now_ms=now, at_ms=now,
                                            cause="time", takes=lambda r, i: r.id == row.id and i <= hwm, only=only)
                engine.save(mpid, state, changes, now, keep_due=True)
            progress["events_done"] = int(progress.get("events_done", 0)) + len(page)
            store.advance(row, cursor=page[-1][0], phase="events", progress=progress)
            return True
        mpids = ProfileStore(conn, row.workspace_id).live_page(PROFILES_PER_PAGE, row.cursor)
        if not mpids:
            progress["finished_unixtime_ms"] = now
            store.advance(row, cursor=row.cursor, phase="done", progress=progress, status="active")
            return True
        compiled = compile_workspace(conn, row.workspace_id)
        engine = Engine(conn, row.workspace_id, compiled)
        states = engine.states.load(mpids, lock=True)
        # This audience is judged (the calculated attributes it may read give their values; nothing else runs).
        only = frozenset({row.key} | {r.key for r, _ in compiled.calculated})
        for mpid in mpids:
            state = states.get(mpid, {})
            _, changes = engine.refresh(mpid, state, [], now_ms=now, at_ms=now, cause="activation",
                                        evaluates=lambda r, _m: r.id == row.id, only=only)
            engine.save(mpid, state, changes, now, keep_due=True)
        progress["profiles_done"] = int(progress.get("profiles_done", 0)) + len(mpids)
        store.advance(row, cursor=mpids[-1], phase="profiles", progress=progress)
        return True


def reevaluate_readers(conn: Conn, attribute: DefinitionRow) -> None:
    """Active audiences that read a calculated attribute whose backfill just ended evaluate every profile again
    (their membership waited while its value was partial)."""
    store = DefinitionStore(conn, attribute.workspace_id)
    for row in store.all("audience"):
        if row.status != "active":
            continue
        try:
            names = parse_audience(row.body["definition"], row.body.get("lookback_days")).calculated_names
        except DefinitionError:
            continue
        if attribute.name.lower() in names:
            store.advance(row, cursor=FIRST_MPID, phase="profiles", progress={**row.progress, "profiles_done": 0},
                          status="backfilling")


def run_backfills(conn: Conn, clock: Clock = now_ms) -> int:
    """Run every pending backfill to its end; pages done."""
    pages = 0
    while True:
        rows = backfilling(conn)
        if not rows:
            return pages
        for row in rows:
            while guarded_step(conn, row, clock()):
                pages += 1


def run_some(conn: Conn, clock: Clock = now_ms, budget_pages: int = 20) -> int:
    pages = 0
    for row in backfilling(conn):
        while pages < budget_pages and guarded_step(conn, row, clock()):
            pages += 1
    return pages


def guarded_step(conn: Conn, row: DefinitionRow, now: int) -> bool:
    """A step whose failure (a definition that no longer parses, a bug) fails this definition's backfill, visibly
    (status `failed`, the error in its progress), instead of every backfill after it."""
    try:
        return step(conn, row, now)
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:
        _log.exception("backfill of %s %s failed", row.kind, row.id)
        with transaction(conn):
            store = DefinitionStore(conn, row.workspace_id)
            store.advance(row, cursor=row.cursor, phase=row.phase,
                          progress={**row.progress, "error": f"{type(error).__name__}: {error}"}, status="failed")
        return False


def _loop(url: str) -> None:
    db = Database(DatabaseUrl.parse(url))
    conn = db.connect()
    while True:
        try:
            if try_singleton_lock(conn, BACKFILL_LOCK) and run_some(conn):
                continue
        except Exception:
            _log.exception("audience backfill failed; retrying")
        time.sleep(0.2)


# The process-stage chore: this process runs the backfill thread (started on first call).
ensure_backfill_worker = StoreThread("kaon-backfill", _loop).ensure
