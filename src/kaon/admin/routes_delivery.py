"""Delivery visibility and control: output status, system alerts, event trace, replay."""

from fastapi import APIRouter, HTTPException

from kaon.admin.deps import Db, Workspace
from kaon.admin.paging import Page, Paging
from kaon.admin.schemas_delivery import Alert, Alerts, OutputStatus, Replayed, ReplayIn, StatusHour, Trace
from kaon.admin.times import Since, Until, point
from kaon.clock import now_ms
from kaon.delivery.store import alerts, output_status, replay, trace
from kaon.errors import NotFound
from kaon.store.outputs import OutputStore

router = APIRouter(tags=["delivery"])
DAY_MS = 86_400_000


def _window(page: Page, since: str | None, until: str | None) -> tuple[int, int | None]:
    """[since, until) pinned by the cursor; since defaults to 24 hours ago."""
    now = now_ms()
    since_ms = page.pin("since", lambda: point("since", since, now) if since is not None else now - DAY_MS)
    return since_ms or 0, page.pin("until", lambda: point("until", until, now))


def _output_or_404(db: Db, workspace_id: str, output_id: str) -> None:
    try:
        OutputStore(db.conn(), workspace_id).output(output_id)
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None


@router.get("/outputs/{output_id}/status", response_model=OutputStatus)
def status(output_id: str, db: Db, workspace_id: Workspace, page: Paging, since: Since = None,
           until: Until = None) -> OutputStatus:
    """The queue now and a page of hourly counters in the window (default: the last 24 hours), oldest first."""
    _output_or_404(db, workspace_id, output_id)
    since_ms, until_ms = _window(page, since, until)
    after = page.after(int)
    found = output_status(db.conn(), workspace_id, output_id, since_ms, until_ms,
                          after_hour=None if after is None else after[0], limit=page.limit + 1)
    hours, next_cursor = page.take(found["hours"], lambda hour: (hour["hour_start_unixtime_ms"],))
    return OutputStatus(output_id=output_id, queue_depth=found["queue_depth"],
                        oldest_queued_unixtime_ms=found["oldest_queued_unixtime_ms"],
                        hours=[StatusHour(**h) for h in hours], next_cursor=next_cursor)


@router.get("/alerts", response_model=Alerts)
def system_alerts(db: Db, workspace_id: Workspace, page: Paging, since: Since = None, until: Until = None) -> Alerts:
    """One alert per output and hour with failures (default: the last 24 hours), newest hour first."""
    since_ms, until_ms = _window(page, since, until)
    rows = alerts(db.conn(), workspace_id, since_ms, until_ms, after=page.after(int, str), limit=page.limit + 1)
    shown, next_cursor = page.take(rows, lambda row: (row["hour_start_unixtime_ms"], row["output_id"]))
    return Alerts(alerts=[Alert(**row) for row in shown], next_cursor=next_cursor)


# A route's fields that do not apply to its result (an output for a filtered event) are left out.
@router.get("/events/{event_id}/trace", response_model=Trace, response_model_exclude_unset=True)
def event_trace(event_id: int, db: Db, workspace_id: Workspace) -> Trace:
    found = trace(db.conn(), workspace_id, event_id) if 0 <= event_id < 2**62 else None
    if found is None:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No event {event_id}."})
    return Trace(**found)


@router.post("/outputs/{output_id}/replay", response_model=Replayed)
def replay_output(output_id: str, body: ReplayIn, db: Db, workspace_id: Workspace) -> Replayed:
    """Queue this output's jobs created in [`since`, `until`) again: dead-lettered ones, or all."""
    now = now_ms()
    since_ms = point("body.since", body.since, now) or 0
    until_ms = point("body.until", body.until, now)
    _output_or_404(db, workspace_id, output_id)
    jobs = replay(db.conn(), workspace_id, output_id, since_ms, dead_only=body.status == "dead", now_ms=now,
                  until_ms=until_ms)
    return Replayed(output_id=output_id, replayed=len(jobs))
