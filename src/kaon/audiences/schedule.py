"""The scheduler of time-driven changes: profiles whose stored next change time has come are evaluated again.

A window rolling off, a sequence's deadline passing or a seen time ageing changes a calculated value or a
membership with no new event. Each profile's state stores the first such time (`due_ms`, indexed), so this
chore reads only the profiles due now, never everyone. A change is recorded at the time it became true.
"""

from kaon.audiences.engine import Compiled, Engine, compile_workspace
from kaon.audiences.store import due_profiles
from kaon.store.sql import Conn

DUE_PER_RUN = 2_000
MAX_STEPS = 1_000  # change times one profile steps through in one run (then it evaluates at now)


def run_due_changes(conn: Conn, now_ms: int) -> int:
    """Evaluate the profiles due by `now_ms` (the process stage's chore, in its transaction); how many."""
    due = due_profiles(conn, now_ms, DUE_PER_RUN)
    compiled: dict[str, Compiled] = {}
    for workspace_id, mpid, due_ms in due:
        if workspace_id not in compiled:
            compiled[workspace_id] = compile_workspace(conn, workspace_id)
        engine = Engine(conn, workspace_id, compiled[workspace_id])
        state = engine.states.load([mpid]).get(mpid, {})
        # A late run (downtime, a backlog) steps through every change time that passed, so each change is
        # recorded at the time it became true, and an entry and exit between two runs are both recorded.
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
    return len(due)
