"""Audience connections: `/api/v1/audiences/{id}/connections` (list sync to audience outputs, triggers)."""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, HTTPException, Query

from kaon.activation import service
from kaon.activation.store import AudienceConnection as Row
from kaon.activation.store import ConnectionStore, SyncedStore
from kaon.admin.deps import Db, Workspace
from kaon.admin.errors import CONFLICT
from kaon.admin.paging import Paging
from kaon.admin.schemas_audiences import (
    AudienceConnection,
    AudienceConnectionIn,
    AudienceConnectionPatch,
    AudienceConnections,
    ConnectionTrace,
    SyncProgress,
)
from kaon.audiences.store import MemberStore
from kaon.clock import now_ms
from kaon.delivery import store as delivery_store
from kaon.errors import Conflict, NotFound
from kaon.store.sql import Conn

router = APIRouter(tags=["audiences"])
TRACE_LIMIT = 100


def _bad(error: Exception) -> HTTPException:
    if isinstance(error, NotFound):
        return HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)})
    if isinstance(error, Conflict):
        return HTTPException(409, detail={"code": "CONFLICT", "message": str(error)})
    return HTTPException(400, detail={"code": "INVALID_SETTINGS", "message": str(error)})


def shown(conn: Conn, row: Row) -> AudienceConnection:
    progress = {k: v for k, v in row.progress.items() if k in SyncProgress.model_fields}
    return AudienceConnection(id=row.id, audience_id=row.audience_id, audience_name=row.audience_name,
                              output_id=row.output_id, mode=row.mode, status=row.status, settings=row.settings,
                              synced_members=service.synced_count(conn, row), progress=SyncProgress(**progress),
                              created_unixtime_ms=row.created_ms, modified_unixtime_ms=row.modified_ms)


@router.post("/audiences/{audience_id}/connections", status_code=201, response_model=AudienceConnection,
             responses=CONFLICT)
def connect(audience_id: str, body: AudienceConnectionIn, db: Db, workspace_id: Workspace) -> AudienceConnection:
    """An audience output gets every current member (initial sync), then each entry and exit as an add or a
    remove; any other output gets each change from now on as an `audience_membership_change` event."""
    conn = db.conn()
    try:
        return shown(conn, service.connect(conn, workspace_id, audience_id, body.output_id, body.settings, now_ms()))
    except (NotFound, Conflict, service.SettingsError) as error:
        raise _bad(error) from None


@router.get("/audiences/{audience_id}/connections", response_model=AudienceConnections)
def list_connections(audience_id: str, db: Db, workspace_id: Workspace, page: Paging) -> AudienceConnections:
    """Oldest first."""
    conn = db.conn()
    rows = ConnectionStore(conn, workspace_id).of_audience(audience_id, page.limit + 1, page.after(int, str))
    found, next_cursor = page.take(rows, lambda r: (r.created_ms, r.id))
    return AudienceConnections(connections=[shown(conn, r) for r in found], next_cursor=next_cursor)


@router.get("/audiences/{audience_id}/connections/{connection_id}", response_model=AudienceConnection)
def get_connection(audience_id: str, connection_id: str, db: Db, workspace_id: Workspace) -> AudienceConnection:
    conn = db.conn()
    try:
        return shown(conn, service.get(conn, workspace_id, audience_id, connection_id))
    except NotFound as error:
        raise _bad(error) from None


@router.patch("/audiences/{audience_id}/connections/{connection_id}", response_model=AudienceConnection,
              responses=CONFLICT)
def change(audience_id: str, connection_id: str, body: AudienceConnectionPatch, db: Db,
           workspace_id: Workspace) -> AudienceConnection:
    """New settings apply to what is sent from now on."""
    conn = db.conn()
    try:
        return shown(conn, service.update(conn, workspace_id, audience_id, connection_id, body.settings, now_ms()))
    except (NotFound, Conflict, service.SettingsError) as error:
        raise _bad(error) from None


@router.delete("/audiences/{audience_id}/connections/{connection_id}", status_code=202,
               response_model=AudienceConnection)
def disconnect(audience_id: str, connection_id: str, db: Db, workspace_id: Workspace) -> AudienceConnection:
    """An audience output gets a removal of every member it was sent (status `disconnecting` until they are
    queued; then the connection is gone); a trigger connection stops at once."""
    conn = db.conn()
    try:
        row = service.disconnect(conn, workspace_id, audience_id, connection_id, now_ms())
    except NotFound as error:
        raise _bad(error) from None
    found = ConnectionStore(conn, workspace_id).find(row.id)
    return shown(conn, found or row)


@router.get("/audiences/{audience_id}/connections/{connection_id}/trace", response_model=ConnectionTrace)
def trace(audience_id: str, connection_id: str, db: Db, workspace_id: Workspace,
          mpid: Annotated[int, Query(ge=-(2**63), le=2**63 - 1)]) -> ConnectionTrace:
    """"Why is this user not in the Meta audience?": the profile's membership changes of the audience, what the
    connection added, and its deliveries (the newest 100) with every attempt."""
    conn = db.conn()
    try:
        row = service.get(conn, workspace_id, audience_id, connection_id)
    except NotFound as error:
        raise _bad(error) from None
    members = MemberStore(conn, workspace_id)
    changes = members.profile_changes(mpid, audience_id, TRACE_LIMIT)
    deliveries: list[dict[str, Any]] = []
    for job in delivery_store.profile_jobs(conn, workspace_id, row.id, mpid, TRACE_LIMIT):
        event = job.pop("event")
        attrs = event.event.data.custom_attributes or {}
        deliveries.append({**job, "action": attrs.get("action"), "cause": attrs.get("cause"),
                           "identities": msgspec.to_builtins(event.user_identities)})
    return ConnectionTrace(audience_id=audience_id, connection_id=row.id, mpid=str(mpid),
                           member=any(a == audience_id for a, _ in members.memberships(mpid)),
                           synced_identities=SyncedStore(conn, workspace_id).of(row.id, [mpid]).get(mpid),
                           changes=changes, deliveries=deliveries)
