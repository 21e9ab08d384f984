"""Calculated attributes: `/api/v1/calculated-attributes` (mParticle's Platform API v2 shape), and activation."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from kaon.admin.deps import Db, Token, Workspace
from kaon.admin.errors import CONFLICT
from kaon.admin.paging import Paging
from kaon.admin.schemas_audiences import CalculatedAttribute, CalculatedAttributes
from kaon.admin.schemas_delivery import Deleted
from kaon.audiences import service
from kaon.audiences.errors import DefinitionError
from kaon.audiences.store import DefinitionRow, DefinitionStore
from kaon.clock import now_ms
from kaon.errors import Conflict, NotFound
from kaon.store.sql import Conn

router = APIRouter(tags=["calculated attributes"])


def refused(error: DefinitionError | NotFound | Conflict) -> HTTPException:
    if isinstance(error, DefinitionError):
        return HTTPException(400, detail={"code": error.code, "message": str(error), "pointer": error.pointer})
    if isinstance(error, NotFound):
        return HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)})
    return HTTPException(409, detail={"code": "CONFLICT", "message": str(error)})


def _object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise refused(DefinitionError("#", "the body must be a JSON object"))
    return body


def shown(conn: Conn, row: DefinitionRow) -> CalculatedAttribute:
    b = row.body
    return CalculatedAttribute(
        id=row.id, name=row.name, description=b.get("description", ""), status=row.status,
        draft_definition=b["draft_definition"], active_definition=b.get("active_definition"),
        audience_count=service.audience_count(conn, row.workspace_id, row.name),
        created_by=b.get("created_by", ""), created_unixtime_ms=row.created_ms,
        last_modified_by=b.get("last_modified_by", ""), last_modified_unixtime_ms=row.modified_ms,
        activated_by=b.get("activated_by"), activated_unixtime_ms=b.get("activated_ms"),
        backfill=service.progress_of(row))  # type: ignore[arg-type]


@router.post("/calculated-attributes", status_code=201, response_model=CalculatedAttribute, responses=CONFLICT)
def create(body: Annotated[Any, Body()], db: Db, workspace_id: Workspace, token: Token) -> CalculatedAttribute:
    """`{name, description, draft_definition}`; saved as a draft (activate it to compute values)."""
    conn = db.conn()
    try:
        return shown(conn, service.create_calculated(conn, workspace_id, _object(body), token.id, now_ms()))
    except (DefinitionError, Conflict) as error:
        raise refused(error) from None


@router.get("/calculated-attributes", response_model=CalculatedAttributes)
def list_all(db: Db, workspace_id: Workspace, page: Paging) -> CalculatedAttributes:
    conn = db.conn()
    after = page.after(str)
    rows, next_cursor = page.take(DefinitionStore(conn, workspace_id).page(
        "calculated", page.limit + 1, None if after is None else after[0]), lambda r: (r.id,))
    return CalculatedAttributes(calculated_attributes=[shown(conn, r) for r in rows], next_cursor=next_cursor)


@router.get("/calculated-attributes/{attribute_id}", response_model=CalculatedAttribute)
def get_one(attribute_id: str, db: Db, workspace_id: Workspace) -> CalculatedAttribute:
    conn = db.conn()
    try:
        return shown(conn, DefinitionStore(conn, workspace_id).get("calculated", attribute_id))
    except NotFound as error:
        raise refused(error) from None


@router.put("/calculated-attributes/{attribute_id}", response_model=CalculatedAttribute, responses=CONFLICT)
def update(attribute_id: str, body: Annotated[Any, Body()], db: Db, workspace_id: Workspace,
           token: Token) -> CalculatedAttribute:
    """Changes the name, description or draft; the active definition changes on the next activation."""
    conn = db.conn()
    try:
        return shown(conn, service.update_calculated(conn, workspace_id, attribute_id, _object(body), token.id,
                                                     now_ms()))
    except (DefinitionError, NotFound, Conflict) as error:
        raise refused(error) from None


@router.delete("/calculated-attributes/{attribute_id}", response_model=Deleted)
def delete(attribute_id: str, db: Db, workspace_id: Workspace) -> Deleted:
    try:
        service.delete_calculated(db.conn(), workspace_id, attribute_id)
    except NotFound as error:
        raise refused(error) from None
    return Deleted(deleted=attribute_id)


@router.post("/calculated-attributes/{attribute_id}/activate", status_code=202, response_model=CalculatedAttribute,
             responses=CONFLICT)
def activate(attribute_id: str, db: Db, workspace_id: Workspace, token: Token) -> CalculatedAttribute:
    """The draft becomes active; values are backfilled from stored events (`status` backfilling, `backfill`
    progress) while live events update them."""
    conn = db.conn()
    try:
        return shown(conn, service.activate_calculated(conn, workspace_id, attribute_id, token.id, now_ms()))
    except (NotFound, Conflict) as error:
        raise refused(error) from None
