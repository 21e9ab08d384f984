"""The data catalog: `GET /api/v1/catalog` (data points with totals) and `/catalog/{data_point}` (its attributes)."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from kaon.admin.deps import Db, Workspace
from kaon.errors import NotFound
from kaon.governance import catalog_store

router = APIRouter(tags=["catalog"])

Text = Annotated[str | None, Query(max_length=200)]


@router.get("/catalog")
def list_catalog(db: Db, workspace_id: Workspace, q: Text = None,
                 type_: Annotated[str | None, Query(alias="type", max_length=200)] = None,
                 input_id: Text = None, environment: Text = None,
                 limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    points = catalog_store.list_points(db.conn(), workspace_id, q=q, type_=type_, input_id=input_id,
                                       environment=environment, limit=limit, offset=offset)
    return {"data_points": points, "next_offset": offset + limit if len(points) == limit else None}


@router.get("/catalog/{data_point}")
def get_data_point(data_point: Annotated[str, Path(max_length=100)], db: Db, workspace_id: Workspace,
                   input_id: Text = None, environment: Text = None) -> dict[str, Any]:
    try:
        return catalog_store.point(db.conn(), workspace_id, data_point, input_id=input_id, environment=environment)
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
