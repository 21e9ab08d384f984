"""`GET /api/v1/events`: processed events, newest first, with a cursor."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from kaon.admin.deps import Db, Workspace
from kaon.admin.schemas import EventOut, EventPage
from kaon.store.events import EventStore
from kaon.types import EventId

router = APIRouter()


@router.get("/events", response_model=EventPage)
def list_events(
    db: Db,
    workspace_id: Workspace,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> EventPage:
    before = None
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
            raise HTTPException(400, detail={"code": "INVALID_CURSOR", "message": "cursor is not valid"})
        before = EventId(int(cursor))
    rows = EventStore(db.conn()).page(workspace_id, limit, before)
    next_cursor = str(rows[-1]["id"]) if len(rows) == limit else None
    return EventPage(events=[EventOut(**row) for row in rows], next_cursor=next_cursor)
