"""What merges and unmerges do to audiences and calculated attributes (called by kaon.identity.merge).

A merge combines the two profiles' state (counts and sums add, extremes and first/last by time, value sets and
event times unioned), the merged profile leaves its audiences and the survivor is evaluated again. An unmerge
rebuilds both profiles' state from the events each holds again, and evaluates both.
"""

from typing import Any

from kaon.activation.store import ConnectionStore, IdentityUpdates
from kaon.audiences import calculated, evaluate
from kaon.audiences.engine import Compiled, Engine, compile_workspace
from kaon.audiences.store import Change, StateStore
from kaon.store.sql import Conn


def combine(compiled: Compiled, keep: dict[str, Any], gone: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"c": {}, "a": {}, "m": dict(keep.get("m", {})),
                           "d": keep.get("d") or gone.get("d") or {}}
    for row, definition in compiled.calculated:
        merged = calculated.merge_states(definition, keep.get("c", {}).get(row.key), gone.get("c", {}).get(row.key))
        if merged:
            out["c"][row.key] = merged
    for row, _ in compiled.audiences:
        joined = evaluate.merge_states(keep.get("a", {}).get(row.key), gone.get("a", {}).get(row.key))
        if joined:
            out["a"][row.key] = joined
    return out


def merged(conn: Conn, workspace_id: str, survivor: int, gone: int, now_ms: int) -> None:
    compiled = compile_workspace(conn, workspace_id)
    store = StateStore(conn, workspace_id)
    if compiled.empty and not store.load([survivor, gone]):
        return  # nothing to move (the common case of a workspace without audiences)
    states = store.load([survivor, gone], lock=True)
    engine = Engine(conn, workspace_id, compiled)
    old = states.get(gone, {})
    # The merged profile leaves the audiences it is still in (not those a deactivation already took it out of).
    exits = [Change(audience_id, gone, "exit", now_ms, "merge")
             for audience_id in sorted(compiled.live_members(old.get("m", {})))]
    state = combine(compiled, states.get(survivor, {}), old)
    _, changes = engine.refresh(survivor, state, [], now_ms=now_ms, at_ms=now_ms, cause="merge")
    store.forget_many([gone])
    engine.save(survivor, state, exits + changes, now_ms)
    if ConnectionStore(conn, workspace_id).syncs_any():  # the survivor holds the merged profile's identities now
        IdentityUpdates(conn).note(workspace_id, [survivor], now_ms)


def unmerged(conn: Conn, workspace_id: str, survivor: int, restored: int, now_ms: int) -> None:
    compiled = compile_workspace(conn, workspace_id, lock=True)  # the rebuild reads backfill cursors
    if compiled.empty and not StateStore(conn, workspace_id).load([survivor, restored]):
        return
    engine = Engine(conn, workspace_id, compiled)
    for mpid in sorted((survivor, restored)):
        engine.rebuild(mpid, now_ms=now_ms, cause="unmerge")
    if ConnectionStore(conn, workspace_id).syncs_any():  # the restored profile took its identities back
        IdentityUpdates(conn).note(workspace_id, [survivor, restored], now_ms)
