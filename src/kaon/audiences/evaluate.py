"""Evaluating an audience for one profile at a clock time, from its incremental state, and its next change time.

A profile's state for an audience keeps, per event criterion, the times of the matching events inside the
lookback (the newest MAX_TIMES), and per sequence the times of its first and second events. Membership at any
time follows from them and the profile's facts; so does the next time it can change with no new event (an event
leaving a window, a sequence's deadline passing, a seen time ageing), which the scheduler acts on.
"""

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from typing import Any

from kaon.audiences.definition import (
    All,
    AnyOf,
    AudienceDefinition,
    ConsentLeaf,
    EventLeaf,
    Node,
    Not,
    ProfileLeaf,
    SeenLeaf,
    SequenceLeaf,
)
from kaon.audiences.facts import Fact

MAX_TIMES = 1_000
# {criterion key: [ts, ...]} or {sequence key: {"a": firsts, "b": followers, "s": events both}} (times, sorted)
State = dict[str, Any]


@dataclass
class ProfileView:
    """What profile criteria read; names are lower-cased; calculated attributes beat user attributes."""

    attributes: dict[str, Any] = field(default_factory=dict)
    calculated: dict[str, Any] = field(default_factory=dict)
    identities: dict[str, list[str]] = field(default_factory=dict)
    consent: dict[str, Any] = field(default_factory=dict)
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    device: dict[str, Any] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)


def _add(times: list[int], ts: int) -> None:
    insort(times, ts)
    if len(times) > MAX_TIMES:
        del times[0]


def observe(definition: AudienceDefinition, state: State, fact: Fact) -> bool:
    """Record the event in the criteria it matches; True when any did."""
    touched = False
    for leaf in definition.event_leaves:
        if isinstance(leaf, EventLeaf):
            if leaf.match.matches(fact):
                _add(state.setdefault(leaf.key, []), fact.ts)
                touched = True
        else:
            first, then = leaf.first.matches(fact), leaf.then.matches(fact)
            # "s": the events that are both, which must not count as following themselves.
            for side, hit in (("a", first), ("b", then), ("s", first and then)):
                if hit:
                    _add(state.setdefault(leaf.key, {}).setdefault(side, []), fact.ts)
                    touched = True
    return touched


def prune(definition: AudienceDefinition, state: State, now_ms: int) -> None:
    """Forget event times older than the lookback (no criterion can count them again)."""
    edge = now_ms - definition.lookback_ms
    for key in list(state):
        held = state[key]
        if isinstance(held, list):
            state[key] = held[bisect_right(held, edge):]
            if not state[key]:
                del state[key]
        else:
            for side in list(held):
                held[side] = held[side][bisect_right(held[side], edge):]
                if not held[side]:
                    del held[side]
            if not held:
                del state[key]


def merge_states(a: State | None, b: State | None) -> State | None:
    if not a or not b:
        return a or b
    out: State = {}
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if isinstance(x, list) or isinstance(y, list):
            out[key] = sorted([*(x or []), *(y or [])])[-MAX_TIMES:]
        else:
            sides = set(x or {}) | set(y or {})
            out[key] = {s: sorted([*(x or {}).get(s, []), *(y or {}).get(s, [])])[-MAX_TIMES:] for s in sides}
    return out


def _window(leaf: EventLeaf | SequenceLeaf, definition: AudienceDefinition, now_ms: int) -> int:
    """Event times must be greater than this."""
    edge = now_ms - definition.lookback_ms
    return edge if leaf.within_ms is None else max(edge, now_ms - leaf.within_ms)


def _event(leaf: EventLeaf, definition: AudienceDefinition, state: State, now_ms: int) -> bool:
    edge = _window(leaf, definition, now_ms)
    times = state.get(leaf.key, [])
    if leaf.between is None:
        count = len(times) - bisect_right(times, edge)
    else:
        since, until = leaf.between
        count = sum(1 for ts in times if ts > edge and since <= ts < until)
    return count >= leaf.at_least and (leaf.at_most is None or count <= leaf.at_most)


def _sequence(leaf: SequenceLeaf, definition: AudienceDefinition, state: State, now_ms: int) -> bool:
    edge = _window(leaf, definition, now_ms)
    held = state.get(leaf.key, {})
    firsts, seconds, both = held.get("a", []), held.get("b", []), held.get("s", [])
    for ta in sorted(set(firsts)):
        if ta <= edge:
            continue
        count = bisect_right(firsts, ta) - bisect_left(firsts, ta)
        selves = min(count, bisect_right(both, ta) - bisect_left(both, ta))
        followers = bisect_right(seconds, ta + leaf.gap_ms) - bisect_left(seconds, ta)
        # A first event that is also a following one does not follow itself: it needs another.
        for itself in ([0] if count > selves else []) + ([1] if selves else []):
            followed = followers - itself > 0
            if leaf.negated and not followed and ta + leaf.gap_ms <= now_ms:
                return True
            if not leaf.negated and followed:
                return True
    return False


def _consent(leaf: ConsentLeaf, view: ProfileView) -> bool:
    record = (view.consent.get(leaf.regulation) or {}).get(leaf.purpose) or {}
    return (record.get("consented") is True) == leaf.wanted


def _profile(leaf: ProfileLeaf, view: ProfileView) -> bool:
    if leaf.kind == "user_attribute":
        value = view.calculated[leaf.name] if leaf.name in view.calculated else view.attributes.get(leaf.name)
    elif leaf.kind == "calculated_attribute":
        value = view.calculated.get(leaf.name)
    elif leaf.kind == "identity":
        value = view.identities.get(leaf.name) or None
    else:
        value = view.device.get(leaf.name)
    return leaf.condition.matches(value)


def _seen(leaf: SeenLeaf, view: ProfileView, now_ms: int) -> bool:
    seen = view.first_seen_ms if leaf.which == "first_seen" else view.last_seen_ms
    if seen is None:
        return False
    if leaf.within_ms is not None:
        return seen > now_ms - leaf.within_ms
    assert leaf.condition is not None
    return leaf.condition.matches(seen)


def holds(node: Node, definition: AudienceDefinition, state: State, view: ProfileView, now_ms: int) -> bool:
    if isinstance(node, All):
        return all(holds(c, definition, state, view, now_ms) for c in node.children)
    if isinstance(node, AnyOf):
        return any(holds(c, definition, state, view, now_ms) for c in node.children)
    if isinstance(node, Not):
        return not holds(node.child, definition, state, view, now_ms)
    if isinstance(node, EventLeaf):
        return _event(node, definition, state, now_ms)
    if isinstance(node, SequenceLeaf):
        return _sequence(node, definition, state, now_ms)
    if isinstance(node, ProfileLeaf):
        return _profile(node, view)
    if isinstance(node, ConsentLeaf):
        return _consent(node, view)
    if isinstance(node, SeenLeaf):
        return _seen(node, view, now_ms)
    return (node.audience_id in view.members) == node.member


def is_member(definition: AudienceDefinition, state: State, view: ProfileView, now_ms: int) -> bool:
    return holds(definition.root, definition, state, view, now_ms)


def _seen_leaves(node: Node) -> list[SeenLeaf]:
    if isinstance(node, All | AnyOf):
        return [leaf for c in node.children for leaf in _seen_leaves(c)]
    if isinstance(node, Not):
        return _seen_leaves(node.child)
    return [node] if isinstance(node, SeenLeaf) and node.within_ms is not None else []


def next_change(definition: AudienceDefinition, state: State, view: ProfileView, now_ms: int) -> int | None:
    """The first time after now at which membership may change with no new event."""
    times: list[int] = []
    lookback = definition.lookback_ms

    def first_after(held: list[int], span: int) -> None:
        """The first of the sorted times whose `t + span` is after now."""
        i = bisect_right(held, now_ms - span)
        if i < len(held):
            times.append(held[i] + span)

    for leaf in definition.event_leaves:
        spans: tuple[int, ...]
        if isinstance(leaf, EventLeaf):
            held = state.get(leaf.key, [])
            spans = (lookback,) if leaf.within_ms is None else (lookback, leaf.within_ms)
        else:
            held = state.get(leaf.key, {}).get("a", [])
            spans = (lookback, leaf.gap_ms) + (() if leaf.within_ms is None else (leaf.within_ms,))
        for span in spans:
            first_after(held, span)
    for aged in _seen_leaves(definition.root):
        seen = view.first_seen_ms if aged.which == "first_seen" else view.last_seen_ms
        if seen is not None and aged.within_ms is not None:
            times.append(seen + aged.within_ms)
    later = [t for t in times if t > now_ms]
    return min(later) if later else None
