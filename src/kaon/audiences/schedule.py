"""The scheduler of time-driven changes: profiles whose stored next change time has come are evaluated again.

A window rolling off, a sequence's deadline passing or a seen time ageing changes a calculated value or a
membership with no new event. Each profile's state stores the first such time (`due_ms`, indexed), so this
chore reads only the profiles due now, never everyone. A change is recorded at the time it became true.
"""

import logging

from kaon.audiences.engine import Compiled, Engine, compile_workspace
from kaon.audiences.store import StateStore, due_profiles, lock_live
from kaon.store.sql import Conn

_log = logging.getLogger("kaon.audiences")
DUE_PER_RUN = 2_000
MAX_STEPS = 1_000  # change times one profile steps through in one run (then it evaluates at now)


def run_due_changes(conn: Conn, now_ms: int) -> int:
    """Evaluate the profiles due by `now_ms` (the process stage's chore, in its transaction); how many."""
    lock_live(conn)
    due = due_profiles(conn, now_ms, DUE_PER_RUN)
    compiled: dict[str, Compiled] = {}
    for workspace_id, mpid, due_ms in due:
        if workspace_id not in compiled:
            compiled[workspace_id] = compile_workspace(conn, workspace_id)
        conn.execute("SAVEPOINT due_change")
        try:
            _evaluate(Engine(conn, workspace_id, compiled[workspace_id]), mpid, due_ms, now_ms)
        except Exception:
            # One profile must not stop every chore of the stage: its work is undone, it is no longer due (its
            # next batch evaluates it again), and the failure is logged.
            conn.execute("ROLLBACK TO SAVEPOINT due_change")
            _log.exception("time-driven changes of profile %s failed", mpid)
            StateStore(conn, workspace_id).set_due(mpid, None)
        conn.execute("RELEASE SAVEPOINT due_change")
    return len(due)


def _evaluate(engine: Engine, mpid: int, due_ms: int, now_ms: int) -> None:
    state = engine.states.load([mpid]).get(mpid, {})
    # A late run (downtime, a backlog) steps through every change time that passed, so each change is recorded
    # at the time it became true, and an entry and exit between two runs are both recorded.
    at, changes = min(due_ms, now_ms), []
    for _ in range(MAX_STEPS):
        changes.extend(engine.refresh(mpid, state, [], now_ms=at, at_ms=at, cause="time")[1])
        following = state.get("due")
        if following is None or following > now_ms or following <= at:
            break
        at = following
    if at < now_ms:
        changes.extend(engine.refresh(mpid, state, [], now_ms=now_ms, at_ms=now_ms, cause="time")[1])
    engine.save(mpid, state, changes, now_ms)
