"""`GET /api/v1/events`: processed events, newest first, filtered, with a cursor (and the filters the profile
events route shares)."""

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query

from kaon.admin.deps import Db, Workspace
from kaon.admin.errors import api_error
from kaon.admin.paging import Paging
from kaon.admin.schemas import EventOut, EventPage
from kaon.admin.times import Since, Until, point
from kaon.clock import now_ms
from kaon.model.events import EVENT_TYPES
from kaon.store.events import EventFilters, EventStore

router = APIRouter(tags=["events"])
Text = Annotated[str | None, Query(min_length=1, max_length=200)]
Mpid = Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1, description="Only this profile's events.")]


def event_filters(
    page: Paging,
    event_name: Annotated[str | None, Query(min_length=1, max_length=200,
                                            description="Custom event name, screen name or commerce action.")] = None,
    event_type: Annotated[str | None, Query(description="One of the canonical event types.",
                                            json_schema_extra={"enum": list(EVENT_TYPES)})] = None,
    input_id: Text = None,
    since: Since = None,
    until: Until = None,
) -> EventFilters:
    """The filters of an event listing; `since`/`until` bound the receive time and are pinned by the cursor."""
    if event_type is not None and event_type not in EVENT_TYPES:
        raise api_error(400, "UNKNOWN_EVENT_TYPE", f"unknown event type {event_type!r}; known types: "
                                                   f"{', '.join(EVENT_TYPES)} - at `event_type`")
    now = now_ms()
    return EventFilters(event_name=event_name, event_type=event_type, input_id=input_id,
                        since_ms=page.pin("since", lambda: point("since", since, now)),
                        until_ms=page.pin("until", lambda: point("until", until, now)))


Filters = Annotated[EventFilters, Depends(event_filters)]


def event_page(db: Db, workspace_id: str, page: Paging, filters: EventFilters) -> EventPage:
    rows = EventStore(db.conn()).page(workspace_id, page.limit + 1, page.after(int, int), filters=filters)
    events, next_cursor = page.take(rows, lambda row: (row["received_unixtime_ms"], row["id"]))
    return EventPage(events=[EventOut(**row) for row in events], next_cursor=next_cursor)


@router.get("/events", response_model=EventPage)
def list_events(db: Db, workspace_id: Workspace, page: Paging, filters: Filters, mpid: Mpid = None) -> EventPage:
    """Newest first (by receive time); every filter given must hold, and a cursor continues the same filters."""
    return event_page(db, workspace_id, page, msgspec.structs.replace(filters, mpid=mpid))
