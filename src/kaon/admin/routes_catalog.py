"""The data catalog: `GET /api/v1/catalog` (data points with totals) and `/catalog/{data_point}` (its attributes)."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from kaon.admin.deps import Db, Workspace
from kaon.admin.paging import Paging
from kaon.admin.schemas_governance import CatalogPoint, DataPoint, DataPoints
from kaon.errors import NotFound
from kaon.governance import catalog_store

router = APIRouter(tags=["catalog"])

Text = Annotated[str | None, Query(max_length=200)]


@router.get("/catalog", response_model=DataPoints)
def list_catalog(db: Db, workspace_id: Workspace, page: Paging, q: Text = None,
                 type_: Annotated[str | None, Query(alias="type", max_length=200)] = None,
                 input_id: Text = None, environment: Text = None) -> DataPoints:
    """Data points by type and name; `q` matches a name, type, custom event type or attribute name."""
    after = page.after(str, str, str, str)
    points = catalog_store.list_points(db.conn(), workspace_id, q=q, type_=type_, input_id=input_id,
                                       environment=environment, limit=page.limit + 1,
                                       after=None if after is None else (after[0], after[1], after[2], after[3]))
    shown, next_cursor = page.take(points, catalog_store.point_key)
    return DataPoints(data_points=[CatalogPoint(**p) for p in shown], next_cursor=next_cursor)


@router.get("/catalog/{data_point}", response_model=DataPoint)
def get_data_point(data_point: Annotated[str, Path(max_length=100)], db: Db, workspace_id: Workspace,
                   input_id: Text = None, environment: Text = None) -> DataPoint:
    try:
        return DataPoint(**catalog_store.point(db.conn(), workspace_id, data_point, input_id=input_id,
                                               environment=environment))
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
