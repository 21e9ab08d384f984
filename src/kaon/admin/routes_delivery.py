"""Delivery visibility and control: output status, system alerts, event trace, replay."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query

from kaon.admin.deps import Db, Workspace
from kaon.clock import now_ms
from kaon.delivery.queue import replay
from kaon.delivery.reports import alerts, output_status, trace
from kaon.errors import NotFound
from kaon.store.outputs import OutputStore

router = APIRouter(tags=["delivery"])
Since = Annotated[int, Query(ge=0, le=2**53, description="unix ms; default: the last 24 hours")]


def _since(value: int | None) -> int:
    return now_ms() - 86_400_000 if value is None else value


@router.get("/outputs/{output_id}/status")
def status(output_id: str, db: Db, workspace_id: Workspace, since: Since | None = None) -> dict[str, Any]:
    try:
        OutputStore(db.conn(), workspace_id).output(output_id)
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
    return output_status(db.conn(), workspace_id, output_id, _since(since))


@router.get("/alerts")
def system_alerts(db: Db, workspace_id: Workspace, since: Since | None = None) -> dict[str, Any]:
    return {"alerts": alerts(db.conn(), workspace_id, _since(since))}


@router.get("/events/{event_id}/trace")
def event_trace(event_id: int, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    found = trace(db.conn(), workspace_id, event_id) if 0 <= event_id < 2**62 else None
    if found is None:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No event {event_id}."})
    return found


@router.post("/outputs/{output_id}/replay")
def replay_output(
    output_id: str, db: Db, workspace_id: Workspace,
    since_ms: Annotated[int, Body(embed=True, ge=0, le=2**53)],
    status: Annotated[Literal["dead", "all"], Body(embed=True)] = "dead",
) -> dict[str, Any]:
    """Queue this output's jobs since `since_ms` again: dead-lettered ones, or all."""
    try:
        OutputStore(db.conn(), workspace_id).output(output_id)
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
    jobs = replay(db.conn(), workspace_id, output_id, since_ms, dead_only=status == "dead", now_ms=now_ms())
    return {"output_id": output_id, "replayed": len(jobs)}
