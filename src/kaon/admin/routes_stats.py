"""`GET /api/v1/stats` (hourly counters per input), `/stats/consent` (unknown GDPR purposes) and `/rejections`."""

from typing import Annotated

from fastapi import APIRouter, Query

from kaon.admin.deps import Db, Token, Workspace
from kaon.admin.paging import Paging
from kaon.admin.schemas import Rejection, Rejections, Stats, StatsRow, UnknownPurpose, UnknownPurposes
from kaon.admin.times import Since, Until, point
from kaon.clock import now_ms
from kaon.store.metrics import MetricsStore

router = APIRouter(tags=["stats"])


@router.get("/stats", response_model=Stats)
def stats(db: Db, workspace_id: Workspace, page: Paging, since: Since = None, until: Until = None,
          input_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None) -> Stats:
    """One row per input and hour, oldest hour first; `since`/`until` bound the hour start (default: all)."""
    now = now_ms()
    since_ms = page.pin("since", lambda: point("since", since, now)) or 0
    until_ms = page.pin("until", lambda: point("until", until, now))
    rows = MetricsStore(db.conn()).stats(workspace_id, since_ms, until_ms, input_id=input_id,
                                         after=page.after(int, str), limit=page.limit + 1)
    shown, next_cursor = page.take(rows, lambda row: (row["hour_start_unixtime_ms"], row["input_id"]))
    return Stats(stats=[StatsRow(**row) for row in shown], next_cursor=next_cursor)


@router.get("/stats/consent", response_model=UnknownPurposes)
def consent_stats(db: Db, workspace_id: Workspace, page: Paging, since: Since = None,
                  until: Until = None) -> UnknownPurposes:
    """Batches carrying GDPR purposes the workspace does not list (stored, never dropped), per input, hour and
    purpose, oldest hour first: the `consent_unknown_purpose` counter of the inputs' hourly stats."""
    now = now_ms()
    rows = MetricsStore(db.conn()).reasons(
        workspace_id, "consent_unknown_purpose", page.pin("since", lambda: point("since", since, now)) or 0,
        page.pin("until", lambda: point("until", until, now)),
        after=page.after(int, str, str), limit=page.limit + 1)
    shown, next_cursor = page.take(rows, lambda r: (r["hour_start_unixtime_ms"], r["input_id"], r["reason"]))
    return UnknownPurposes(unknown_purposes=[UnknownPurpose(purpose=r["reason"], **{k: r[k] for k in (
        "input_id", "hour_start_unixtime_ms", "count")}) for r in shown], next_cursor=next_cursor)


@router.get("/rejections", response_model=Rejections)
def rejections(db: Db, workspace_id: Workspace, token: Token, page: Paging) -> Rejections:
    """Refused requests, newest first (sampled at the door: see the `rejected` counters for totals). The
    workspace's own; an operator token also sees those of no workspace (bad key, unknown path, CORS)."""
    after = page.after(int)
    rows = MetricsStore(db.conn()).rejections(workspace_id, page.limit + 1, None if after is None else after[0],
                                              unowned=token.operator)
    shown, next_cursor = page.take(rows, lambda row: (row["id"],))
    return Rejections(rejections=[Rejection(**row) for row in shown], next_cursor=next_cursor)
