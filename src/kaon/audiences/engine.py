"""One profile's audiences and calculated attributes brought up to date, inside the caller's transaction.

The process stage (new events), the scheduler (a change time that came), a backfill (stored events), a merge or
an unmerge all call `Engine.refresh`: it applies the events each definition should take, drops what rolled out of
the windows, evaluates the active audiences, records every entry and exit, and stores the state with the
profile's next change time. Which events a definition takes is what makes a backfill exact: live work takes
events stored after the activation (`id > hwm`), the backfill those up to it.
"""

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kaon.audiences import calculated, evaluate
from kaon.audiences.calculated import CalcDefinition
from kaon.audiences.definition import AudienceDefinition, EventLeaf, parse_audience
from kaon.audiences.errors import DefinitionError
from kaon.audiences.evaluate import ProfileView
from kaon.audiences.facts import Fact, fact_of
from kaon.audiences.matching import EventMatch
from kaon.audiences.store import Change, DefinitionRow, DefinitionStore, MemberStore, StateStore
from kaon.identity.store import ProfileStore
from kaon.store.events import EventStore
from kaon.store.sql import Conn

_log = logging.getLogger("kaon.audiences")
_decode = msgspec.json.Decoder()
# An event as a definition sees it: (stored event id, fact).
Seen = tuple[int, Fact]
Takes = Callable[[DefinitionRow, int], bool]
MAX_ROUTES = 4_096  # event kinds whose takers one compiled workspace remembers


def live_takes(row: DefinitionRow, event_id: int) -> bool:
    """Live work takes the events stored after the activation's high-water mark."""
    return row.hwm is None or event_id > row.hwm


def stored_takes(row: DefinitionRow, event_id: int) -> bool:
    """Rebuilding from stored events: all of an active definition's; a backfilling one's that the backfill has
    already read (id up to its cursor) or that live work took (after its high-water mark)."""
    if row.status != "backfilling" or row.phase != "events":
        return True
    return event_id <= row.cursor or live_takes(row, event_id)


@dataclass(frozen=True)
class Compiled:
    """A workspace's live definitions, parsed; audiences in dependency order."""

    calculated: list[tuple[DefinitionRow, CalcDefinition]] = field(default_factory=list)
    audiences: list[tuple[DefinitionRow, AudienceDefinition]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.calculated and not self.audiences

    @property
    def uses_profile(self) -> bool:
        return any(d.uses_profile for _, d in self.audiences)

    def keys(self) -> set[str]:
        return self._keys

    @functools.cached_property
    def _keys(self) -> set[str]:
        return {r.key for r, _ in self.calculated} | {r.key for r, _ in self.audiences}

    @functools.cached_property
    def _index(self) -> dict[str | None, list[tuple[str, tuple[EventMatch, ...]]]]:
        """Definitions by the event type their matchers need (None: any type), with those matchers."""
        index: dict[str | None, list[tuple[str, tuple[EventMatch, ...]]]] = {}
        wanted: list[tuple[str, tuple[EventMatch, ...]]] = [(r.key, (d.match,)) for r, d in self.calculated]
        for row, definition in self.audiences:
            found: list[EventMatch] = []
            for leaf in definition.event_leaves:
                found.extend((leaf.match,) if isinstance(leaf, EventLeaf) else (leaf.first, leaf.then))
            wanted.append((row.key, tuple(found)))
        for key, matchers in wanted:
            types = {m.event_type for m in matchers}
            for kind in ({None} if None in types else types):
                index.setdefault(kind, []).append((key, matchers))
        return index

    def event_kinds(self, key: str) -> dict[str, frozenset[str] | None] | None:
        """The event types a definition's matchers may take, each with the (lower-cased) names they may take
        (None: any name), so a backfill reads only those events; None: any event. Names narrow only custom events
        and screen views whose matcher names are ASCII (a commerce event also matches by its product action,
        which its stored name may not be)."""
        found: dict[str, set[str] | None] = {}
        for kind, entries in self._index.items():
            for k, matchers in entries:
                if k != key:
                    continue
                if kind is None:
                    return None
                for m in matchers:
                    if m.event_type != kind:
                        continue
                    narrow = kind in ("custom_event", "screen_view") and m.name is not None and m.name.isascii()
                    held = found.setdefault(kind, set())
                    if held is None or not narrow:
                        found[kind] = None
                    else:
                        held.add(m.name or "")
        return {kind: None if names is None else frozenset(names) for kind, names in found.items()}

    def live_members(self, members: dict[str, Any]) -> dict[str, Any]:
        """A profile's membership entries (`state["m"]`) that still hold: of a live audience, made after its last
        deactivation (whose exits were recorded then)."""
        cleared = {row.id: int(row.body.get("cleared_version", -1)) for row, _ in self.audiences}
        return {a: e for a, e in members.items() if a in cleared and entry_version(e) > cleared[a]}

    @functools.cached_property
    def _routes(self) -> dict[tuple[str, str | None, str | None, str | None], tuple[str, ...]]:
        return {}

    def takers(self, fact: Fact) -> tuple[str, ...]:
        """The keys of the definitions whose matchers may take the event by its kind (type, name, custom event
        type, product action: all `kind_matches` reads), remembered per kind."""
        kind = (fact.event_type, fact.name, fact.custom_event_type, fact.action)
        found = self._routes.get(kind)
        if found is None:
            index = self._index
            found = tuple(key for key, matchers in (*index.get(fact.event_type, ()), *index.get(None, ()))
                          if any(m.kind_matches(fact) for m in matchers))
            if len(self._routes) < MAX_ROUTES:
                self._routes[kind] = found
        return found

    def route(self, seen: list[Seen], only: frozenset[str] | None = None) -> dict[str, list[Seen]]:
        """The events each definition (of `only`, when given) may take, by event type and name, so most pairs of
        event and definition are never compared."""
        out: dict[str, list[Seen]] = {}
        for item in seen:
            for key in self.takers(item[1]):
                if only is None or key in only:
                    out.setdefault(key, []).append(item)
        return out


def active_definition(row: DefinitionRow) -> dict[str, Any] | None:
    found = row.body.get("active_definition") if row.kind == "calculated" else row.body.get("definition")
    return found if isinstance(found, dict) else None


def ordered(audiences: list[tuple[DefinitionRow, AudienceDefinition]]) -> list[tuple[DefinitionRow,
                                                                                     AudienceDefinition]]:
    """Audiences after those they name (definitions are checked for cycles when saved)."""
    by_id = {r.id: (r, d) for r, d in audiences}
    out: list[tuple[DefinitionRow, AudienceDefinition]] = []
    placed: set[str] = set()

    def place(audience_id: str, path: frozenset[str]) -> None:
        if audience_id in placed or audience_id in path or audience_id not in by_id:
            return
        row, definition = by_id[audience_id]
        for other in sorted(definition.references):
            place(other, path | {audience_id})
        placed.add(audience_id)
        out.append((row, definition))

    for audience_id in sorted(by_id):
        place(audience_id, frozenset())
    return out


def compile_rows(rows: Iterable[DefinitionRow]) -> Compiled:
    calcs: list[tuple[DefinitionRow, CalcDefinition]] = []
    audiences: list[tuple[DefinitionRow, AudienceDefinition]] = []
    for row in rows:
        raw = active_definition(row)
        try:
            if row.kind == "calculated":
                calcs.append((row, calculated.parse_definition(raw)))
            else:
                audiences.append((row, parse_audience(raw, row.body.get("lookback_days"))))
        except DefinitionError as error:  # saved definitions were checked; one from an older Kaon may not parse
            _log.error("%s %s does not parse (%s): skipped", row.kind, row.id, error)
    return Compiled(calcs, ordered(audiences))


def compile_workspace(conn: Conn, workspace_id: str, *, lock: bool = False) -> Compiled:
    return compile_rows(DefinitionStore(conn, workspace_id).live(lock=lock))


def facts_of_rows(rows: Iterable[tuple[int, int, bytes]]) -> list[Seen]:
    """Facts of stored events given as (id, timestamp_ms, body)."""
    return [(event_id, fact_of(_decode.decode(body), ts)) for event_id, ts, body in rows]


# What profile criteria read of one profile, read for many at once (Engine.prefetch): (consent, first seen, last
# seen) or None when there is no such profile, attributes (lower-cased names), identities by type.
ProfileFacts = tuple[tuple[dict[str, Any], int | None, int | None] | None, dict[str, Any], dict[str, list[str]]]


def profile_view(profiles: ProfileStore, mpid: int, calculated_values: dict[str, Any], device: dict[str, Any], *,
                 load: bool, facts: ProfileFacts | None = None) -> ProfileView:
    """What profile criteria read; the profile's row, attributes and identities only when `load` (from `facts`
    when the caller read them already)."""
    view = ProfileView(calculated={k.lower(): v for k, v in calculated_values.items()}, device=device)
    if not load:
        return view
    if facts is not None:
        seen, view.attributes, identities = facts
        view.identities = {k: list(v) for k, v in identities.items()}
        if seen is not None:
            view.consent, view.first_seen_ms, view.last_seen_ms = seen
        return view
    row = profiles.row(mpid)
    if row is not None:
        view.consent = row["consent"]
        view.first_seen_ms, view.last_seen_ms = row["first_seen_ms"], row["last_seen_ms"]
    view.attributes = {name.lower(): value for name, (value, _) in profiles.attributes(mpid).items()}
    for kind, value, _ in profiles.identities(mpid):
        view.identities.setdefault(kind, []).append(value)
    return view


def entry_version(entry: Any) -> int:
    """The definition version a membership entry of a profile's state was made under ([entered_ms, version]; a
    bare time is from before versions were kept)."""
    return int(entry[1]) if isinstance(entry, list) else 0


class Engine:
    def __init__(self, conn: Conn, workspace_id: str, compiled: Compiled) -> None:
        self.conn = conn
        self.ws = workspace_id
        self.compiled = compiled
        self.states = StateStore(conn, workspace_id)
        self.members = MemberStore(conn, workspace_id)
        self.profiles = ProfileStore(conn, workspace_id)
        self._facts: dict[int, ProfileFacts] = {}

    def prefetch(self, mpids: list[int]) -> None:
        """Read what profile criteria need of these profiles at once (3 queries, not 3 per profile)."""
        if not self.compiled.uses_profile or not mpids:
            return
        seen = {m: (c, first, last) for m, (c, _, first, last) in self.profiles.summary_of_many(mpids).items()}
        attributes = self.profiles.attributes_of_many(mpids)
        identities = self.profiles.identities_of_many(mpids)
        for mpid in mpids:
            by_type: dict[str, list[str]] = {}
            for kind, value, _ in identities.get(mpid, []):
                by_type.setdefault(kind, []).append(value)
            self._facts[mpid] = (seen.get(mpid), {k.lower(): v for k, v in attributes.get(mpid, {}).items()},
                                 by_type)

    def view(self, mpid: int, calculated_values: dict[str, Any], device: dict[str, Any]) -> ProfileView:
        return profile_view(self.profiles, mpid, calculated_values, device, load=self.compiled.uses_profile,
                            facts=self._facts.get(mpid))

    def refresh(self, mpid: int, state: dict[str, Any], seen: list[Seen], *, now_ms: int, at_ms: int, cause: str,
                takes: Takes = live_takes, device: dict[str, Any] | None = None,
                evaluates: Callable[[DefinitionRow, int], bool] | None = None,
                only: frozenset[str] | None = None,
                changed: frozenset[str] | None = None) -> tuple[dict[str, Any], list[Change]]:
        """Bring `state` up to date with `seen` at `now_ms`; returns the calculated values and the changes made.

        `changed` (live batches) names the profile facts the batch may have changed, as AudienceDefinition.reads
        names them (`user_attribute:plan`, `device:platform`, `consent`, `identity`, `first_seen`, `last_seen`);
        None: anything may have. `only` (a backfill)
        limits the work to those definition keys: the others keep their state, are not judged,
        and their next change time is kept (`save(..., keep_due=True)`). The caller saves nothing: `save` stores
        the state and next change time, and records the changes."""
        calcs: dict[str, Any] = state.setdefault("c", {})
        auds: dict[str, Any] = state.setdefault("a", {})
        if only is None:
            keys = self.compiled.keys()
            for held in (calcs, auds):
                for key in [k for k in held if k not in keys]:
                    del held[key]  # an older version's, or a definition no longer live
        routed = self.compiled.route(seen, only) if seen else {}
        if device:
            state["d"] = {**state.get("d", {}), **device}
        values: dict[str, Any] = {}
        due: list[int] = []
        # Next change times by definition key, cached from the last time each was computed (live work only).
        nexts: dict[str, Any] = state.setdefault("n", {})
        if only is None:
            live_keys = self.compiled.keys()
            for key in [k for k in nexts if k not in live_keys]:
                del nexts[key]
        previous: dict[str, Any] = state.get("pv", {})
        for row, calc in self.compiled.calculated:
            one = calcs.get(row.key) or {}
            if only is not None and row.key not in only:
                if one and evaluates is not None:  # read by the audience judged here
                    values[row.name] = calculated.current(calc, one, now_ms)
                continue
            mine = [item for item in routed.get(row.key, ()) if takes(row, item[0])]
            if not one and not mine:
                continue
            if (not mine and changed is not None and only is None and row.key in nexts and row.name in previous
                    and (nexts[row.key] is None or nexts[row.key] > now_ms)):
                # No new event and nothing rolled off since it was computed: the value is the one computed then.
                values[row.name] = previous[row.name]
                if nexts[row.key] is not None:
                    due.append(nexts[row.key])
                continue
            existed = bool(one)
            for _, fact in mine:
                calculated.apply(calc, one, fact)
            calculated.prune(calc, one, now_ms)
            if not existed and "w" in one and not one["w"]:
                continue  # its only events were outside the window already: as a backfill would skip them
            if "a" in one or "w" in one:  # it has had events: its value is shown, null (or 0) once they roll off
                calcs[row.key] = one
                values[row.name] = calculated.current(calc, one, now_ms)
                change = calculated.next_change(calc, one, now_ms)
                if only is None:
                    nexts[row.key] = change
                else:  # `pv` keeps the live value: computed again by the next live batch
                    nexts.pop(row.key, None)
                if change is not None:
                    due.append(change)
        members: dict[str, Any] = self.compiled.live_members(state.get("m", {}))
        state["m"] = members
        loaded: list[ProfileView] = []

        def view() -> ProfileView:  # loaded only when an audience is judged (three queries when profile criteria)
            if not loaded:
                loaded.append(self.view(mpid, values, state.get("d", {})))
                loaded[0].members = set(members)
            return loaded[0]

        changes: list[Change] = []
        # A calculated attribute whose new version is being backfilled has a partial value: audiences that read it
        # keep their members until its backfill ends (which then has them evaluated again, kaon.audiences.backfill).
        pending = {row.name.lower() for row, _ in self.compiled.calculated if row.status == "backfilling"}
        # What changed since the profile was last judged: an audience none of whose inputs changed, and whose
        # next change time has not come, keeps its membership without being judged again.
        moved_values = None if changed is None else {
            name.lower() for name in set(values) | set(previous) if values.get(name) != previous.get(name)}
        moved_audiences: set[str] = set()
        for row, definition in self.compiled.audiences:
            if only is not None and row.key not in only:
                continue
            one = auds.get(row.key) or {}
            mine = [item for item in routed.get(row.key, ()) if takes(row, item[0])]
            judged = (row.status == "active" or (row.phase == "profiles" and mpid <= row.cursor)
                      or (evaluates is not None and evaluates(row, mpid)))
            if (changed is not None and moved_values is not None and judged and not mine and row.key in nexts
                    and (nexts[row.key] is None or nexts[row.key] > now_ms) and not definition.reads & changed
                    and not definition.calculated_names & moved_values
                    and not definition.references & moved_audiences and not definition.calculated_names & pending):
                if nexts[row.key] is not None:
                    due.append(nexts[row.key])
                continue  # nothing it reads changed: membership and next change time as they were
            for _, fact in mine:
                evaluate.observe(definition, one, fact)
            evaluate.prune(definition, one, now_ms)
            if one:
                auds[row.key] = one
            else:
                auds.pop(row.key, None)
            if not judged or definition.calculated_names & pending:
                nexts.pop(row.key, None)
                continue  # backfilling: membership waits for the backfill (kept as it was)
            inside = evaluate.is_member(definition, one, view(), now_ms)
            was = row.id in members
            if inside and not was:
                members[row.id] = [at_ms, row.version]
                view().members.add(row.id)
                moved_audiences.add(row.id)
                changes.append(Change(row.id, mpid, "enter", at_ms, cause))
            elif was and not inside:
                del members[row.id]
                view().members.discard(row.id)
                moved_audiences.add(row.id)
                changes.append(Change(row.id, mpid, "exit", at_ms, cause))
            change = evaluate.next_change(definition, one, view(), now_ms)
            nexts[row.key] = change
            if change is not None:
                due.append(change)
        if only is None:
            state["pv"] = values
        state["due"] = min(due) if due else None
        if not members:
            state.pop("m", None)
        return values, changes

    def save(self, mpid: int, state: dict[str, Any], changes: list[Change], now_ms: int, *,
             keep_due: bool = False) -> None:
        self.save_many([(mpid, state, changes)], now_ms, keep_due=keep_due)

    def save_many(self, refreshed: list[tuple[int, dict[str, Any], list[Change]]], now_ms: int, *,
                  keep_due: bool = False) -> None:
        """Store the profiles' states with their next change times (`keep_due`: the earlier of each and the one
        stored) and record their changes: one statement for the states, one set for the changes."""
        kept: list[tuple[int, dict[str, Any], int | None]] = []
        forgotten: list[int] = []
        for mpid, state, _ in refreshed:
            due = state.pop("due", None)
            if state.get("c") or state.get("a") or state.get("m") or state.get("d"):
                kept.append((mpid, {k: v for k, v in state.items() if v}, due))
            else:
                forgotten.append(mpid)  # nothing worth a row
        self.states.save_many(kept, keep_due=keep_due)
        self.states.forget_many(forgotten)
        self.members.record([c for _, _, changes in refreshed for c in changes], now_ms)

    def rebuild(self, mpid: int, *, now_ms: int, cause: str) -> list[Change]:
        """Recompute a profile's state from its stored events (after an unmerge gave events back)."""
        old = self.states.load([mpid], lock=True).get(mpid, {})
        state: dict[str, Any] = {k: v for k, v in old.items() if k in ("m", "d")}
        seen = facts_of_rows(EventStore(self.conn).of_profile(self.ws, mpid))
        _, changes = self.refresh(mpid, state, seen, now_ms=now_ms, at_ms=now_ms, cause=cause, takes=stored_takes)
        self.save(mpid, state, changes, now_ms)
        return changes


def compile_calculated(conn: Conn, workspace_id: str) -> Compiled:
    """The workspace's live calculated attributes (what `current_values` reads), to reuse over many profiles."""
    return compile_rows(r for r in DefinitionStore(conn, workspace_id).live() if r.kind == "calculated")


def current_values(conn: Conn, workspace_id: str, mpid: int, now_ms: int,
                   compiled: Compiled | None = None, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """A profile's calculated attribute values now (name → value; a null value when its window is empty); the
    profile's `state` when the caller loaded it already."""
    if compiled is None:
        compiled = compile_calculated(conn, workspace_id)
    if not compiled.calculated:
        return {}
    if state is None:
        state = StateStore(conn, workspace_id).load([mpid]).get(mpid, {})
    out: dict[str, Any] = {}
    for row, definition in compiled.calculated:
        one = state.get("c", {}).get(row.key)
        if one:
            out[row.name] = calculated.current(definition, one, now_ms)
    return out


def memberships(conn: Conn, workspace_id: str, mpid: int) -> list[dict[str, Any]]:
    """The audiences a profile is in now, with names and entry times."""
    names = {r.id: r.name for r in DefinitionStore(conn, workspace_id).all("audience")}
    return [{"audience_id": a, "audience_name": names.get(a, a), "entered_unixtime_ms": entered}
            for a, entered in MemberStore(conn, workspace_id).memberships(mpid)]
