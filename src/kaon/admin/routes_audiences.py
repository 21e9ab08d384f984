"""Audiences: `/api/v1/audiences` (definitions, activation, members, size, estimate, membership changes)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from kaon.admin.deps import Db, Reader, Token, Workspace
from kaon.admin.errors import CONFLICT
from kaon.admin.paging import Paging
from kaon.admin.routes_calculated import _object, refused
from kaon.admin.schemas_audiences import (
    Audience,
    Audiences,
    EstimateOut,
    Member,
    Members,
    MembershipChange,
    MembershipChanges,
    Size,
)
from kaon.admin.schemas_delivery import Deleted
from kaon.audiences import service
from kaon.audiences.definition import parse_audience
from kaon.audiences.errors import DefinitionError
from kaon.audiences.estimate import estimate
from kaon.audiences.store import DefinitionRow, DefinitionStore, MemberStore
from kaon.clock import now_ms
from kaon.errors import Conflict, NotFound
from kaon.store.sql import Conn

router = APIRouter(tags=["audiences"])


def shown(conn: Conn, row: DefinitionRow) -> Audience:
    b = row.body
    size = service.size_of(conn, row, now_ms())
    return Audience(
        id=row.id, name=row.name, external_name=b.get("external_name", row.name),
        description=b.get("description", ""), status=row.status, lookback_days=b.get("lookback_days") or 30,
        definition=b["definition"], is_calculated=True, created_by=b.get("created_by", ""),
        created_unixtime_ms=row.created_ms, last_modified_by=b.get("last_modified_by", ""),
        last_modified_unixtime_ms=row.modified_ms, backfill=service.progress_of(row),  # type: ignore[arg-type]
        **size)


def _get(conn: Conn, workspace_id: str, audience_id: str) -> DefinitionRow:
    try:
        return DefinitionStore(conn, workspace_id).get("audience", audience_id)
    except NotFound as error:
        raise refused(error) from None


@router.post("/audiences", status_code=201, response_model=Audience, responses=CONFLICT)
def create(body: Annotated[Any, Body()], db: Db, workspace_id: Workspace, token: Token) -> Audience:
    """`{name, external_name, description, lookback_days, definition}` (docs/audiences.md); saved as a draft."""
    conn = db.conn()
    try:
        return shown(conn, service.create_audience(conn, workspace_id, _object(body), token.id, now_ms()))
    except (DefinitionError, Conflict) as error:
        raise refused(error) from None


@router.post("/audiences/estimate", response_model=EstimateOut)
def estimate_size(body: Annotated[Any, Body()], db: Db, workspace_id: Reader) -> EstimateOut:
    """The size a draft `{definition, lookback_days}` would have now, without saving it."""
    raw = _object(body)
    try:
        definition = parse_audience(raw.get("definition"), raw.get("lookback_days"))
        service.check_audience(db.conn(), workspace_id, None, raw.get("definition"), raw.get("lookback_days"))
    except DefinitionError as error:
        raise refused(error) from None
    found = estimate(db.conn(), workspace_id, definition, now_ms())
    return EstimateOut(size=found.size, profiles_evaluated=found.profiles_evaluated, events_read=found.events_read,
                       exact=found.exact)


@router.get("/audiences", response_model=Audiences)
def list_all(db: Db, workspace_id: Workspace, page: Paging) -> Audiences:
    conn = db.conn()
    after = page.after(str)
    rows, next_cursor = page.take(DefinitionStore(conn, workspace_id).page(
        "audience", page.limit + 1, None if after is None else after[0]), lambda r: (r.id,))
    return Audiences(audiences=[shown(conn, r) for r in rows], next_cursor=next_cursor)


@router.get("/audiences/changes", response_model=MembershipChanges)
def changes(db: Db, workspace_id: Workspace, page: Paging,
            audience_id: Annotated[str | None, Query(max_length=64)] = None) -> MembershipChanges:
    """Every entry and exit, oldest first (append-only): what audience outputs and triggers read."""
    after = page.after(int)
    rows, next_cursor = page.take(MemberStore(db.conn(), workspace_id).changes(
        audience_id, page.limit + 1, None if after is None else after[0]), lambda r: (r["id"],))
    return MembershipChanges(changes=[MembershipChange(**{**r, "mpid": str(r["mpid"])}) for r in rows],
                             next_cursor=next_cursor)


@router.get("/audiences/{audience_id}", response_model=Audience)
def get_one(audience_id: str, db: Db, workspace_id: Workspace) -> Audience:
    conn = db.conn()
    return shown(conn, _get(conn, workspace_id, audience_id))


@router.put("/audiences/{audience_id}", response_model=Audience, responses=CONFLICT)
def update(audience_id: str, body: Annotated[Any, Body()], db: Db, workspace_id: Workspace,
           token: Token) -> Audience:
    """A new definition of a live audience is backfilled again; members change when that ends."""
    conn = db.conn()
    try:
        return shown(conn, service.update_audience(conn, workspace_id, audience_id, _object(body), token.id,
                                                   now_ms()))
    except (DefinitionError, NotFound, Conflict) as error:
        raise refused(error) from None


@router.delete("/audiences/{audience_id}", response_model=Deleted, responses=CONFLICT)
def delete(audience_id: str, db: Db, workspace_id: Workspace) -> Deleted:
    """Every member leaves (exits recorded, cause `deleted`); refused while another audience names it."""
    try:
        service.delete_audience(db.conn(), workspace_id, audience_id, now_ms())
    except (NotFound, Conflict) as error:
        raise refused(error) from None
    return Deleted(deleted=audience_id)


@router.post("/audiences/{audience_id}/activate", status_code=202, response_model=Audience, responses=CONFLICT)
def activate(audience_id: str, db: Db, workspace_id: Workspace, token: Token) -> Audience:
    """Membership is backfilled from the stored history (`backfill` progress), then kept in real time."""
    conn = db.conn()
    try:
        return shown(conn, service.activate_audience(conn, workspace_id, audience_id, token.id, now_ms()))
    except (NotFound, Conflict) as error:
        raise refused(error) from None


@router.post("/audiences/{audience_id}/deactivate", response_model=Audience)
def deactivate(audience_id: str, db: Db, workspace_id: Workspace) -> Audience:
    conn = db.conn()
    try:
        return shown(conn, service.deactivate_audience(conn, workspace_id, audience_id, now_ms()))
    except NotFound as error:
        raise refused(error) from None


@router.get("/audiences/{audience_id}/members", response_model=Members)
def members(audience_id: str, db: Db, workspace_id: Workspace, page: Paging) -> Members:
    """Current members in mpid order, with the time each entered."""
    conn = db.conn()
    _get(conn, workspace_id, audience_id)
    after = page.after(int)
    rows, next_cursor = page.take(MemberStore(conn, workspace_id).members(
        audience_id, page.limit + 1, None if after is None else after[0]), lambda r: (r[0],))
    return Members(members=[Member(mpid=str(m), entered_unixtime_ms=e) for m, e in rows], next_cursor=next_cursor)


@router.get("/audiences/{audience_id}/size", response_model=Size)
def size(audience_id: str, db: Db, workspace_id: Workspace) -> Size:
    """Current size, and the profiles that entered and left in the last 24 hours (as mParticle lists them)."""
    conn = db.conn()
    row = _get(conn, workspace_id, audience_id)
    now = now_ms()
    return Size(audience_id=audience_id, as_of_unixtime_ms=now, **service.size_of(conn, row, now))
