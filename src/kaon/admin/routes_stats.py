"""`GET /api/v1/stats` (hourly counters per input) and `GET /api/v1/rejections` (refused requests)."""

from typing import Annotated

from fastapi import APIRouter, Query

from kaon.admin.deps import Db, Workspace
from kaon.admin.schemas import Rejection, Rejections, Stats, StatsRow
from kaon.store.metrics import MetricsStore

router = APIRouter()


@router.get("/stats", response_model=Stats)
def stats(
    db: Db,
    workspace_id: Workspace,
    since: Annotated[int, Query(ge=0, le=2**53, description="Hour start, unix ms; default: all")] = 0,
) -> Stats:
    rows = MetricsStore(db.conn()).stats(workspace_id, since)
    return Stats(stats=[StatsRow(**row) for row in rows])


@router.get("/rejections", response_model=Rejections)
def rejections(
    db: Db, workspace_id: Workspace, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Rejections:
    rows = MetricsStore(db.conn()).rejections(workspace_id, limit)
    return Rejections(rejections=[Rejection(**row) for row in rows])
