"""The size a draft audience would have now, without saving it: its criteria over the stored history.

Reads the events inside the draft's lookback (in id pages, at most MAX_EVENTS) into in-memory state, then
evaluates the profiles that can match: those with matching events, or every live profile (at most MAX_PROFILES)
when the draft can match a profile with no events (profile criteria, `at_most`, `not`). `exact` is false when a
bound cut the reading short.
"""

from dataclasses import dataclass
from typing import Any

import msgspec

from kaon.audiences import calculated, evaluate
from kaon.audiences.definition import AudienceDefinition
from kaon.audiences.engine import compile_workspace, profile_view
from kaon.audiences.evaluate import ProfileView
from kaon.audiences.facts import fact_of
from kaon.audiences.store import MemberStore, StateStore
from kaon.identity.store import ProfileStore
from kaon.store.events import EventStore
from kaon.store.sql import Conn

MAX_EVENTS = 2_000_000
MAX_PROFILES = 200_000
PAGE = 5_000
_decode = msgspec.json.Decoder()


@dataclass(frozen=True)
class Estimate:
    size: int
    profiles_evaluated: int
    events_read: int
    exact: bool


def estimate(conn: Conn, workspace_id: str, definition: AudienceDefinition, now: int) -> Estimate:
    events = EventStore(conn)
    last, cursor, read, exact = events.last_id(), 0, 0, True
    states: dict[int, dict[str, Any]] = {}
    while True:
        page = events.scan(workspace_id, after_id=cursor, max_id=last, min_ts=now - definition.lookback_ms,
                           limit=PAGE)
        if not page:
            break
        for _, mpid, ts, body in page:
            evaluate.observe(definition, states.setdefault(mpid, {}), fact_of(_decode.decode(body), ts))
        read += len(page)
        cursor = page[-1][0]
        if read >= MAX_EVENTS:
            exact = False
            break
    profiles = ProfileStore(conn, workspace_id)
    open_ended = (evaluate.is_member(definition, {}, ProfileView(), now) or definition.uses_profile
                  or definition.uses_device or bool(definition.references))
    if open_ended:
        candidates: list[int] = []
        after: int | None = None
        while len(candidates) < MAX_PROFILES:
            found = profiles.live_page(min(PAGE, MAX_PROFILES - len(candidates)), after)
            if not found:
                break
            candidates.extend(found)
            after = found[-1]
        else:
            exact = exact and not profiles.live_page(1, after)
    else:
        candidates = sorted(m for m, s in states.items() if s)
    compiled = compile_workspace(conn, workspace_id)
    stored = StateStore(conn, workspace_id)
    members = MemberStore(conn, workspace_id)
    size = 0
    for start in range(0, len(candidates), PAGE):
        chunk = candidates[start:start + PAGE]
        held = stored.load(chunk)
        for mpid in chunk:
            state = held.get(mpid, {})
            values = {row.name: calculated.current(d, state.get("c", {}).get(row.key), now)
                      for row, d in compiled.calculated if state.get("c", {}).get(row.key)}
            view = profile_view(profiles, mpid, values, state.get("d", {}), load=definition.uses_profile)
            if definition.references:
                view.members = {a for a, _ in members.memberships(mpid)}
            if evaluate.is_member(definition, states.get(mpid, {}), view, now):
                size += 1
    return Estimate(size, len(candidates), read, exact)
