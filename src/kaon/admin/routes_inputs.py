"""`/api/v1/inputs`: list, create, enable/disable, default data plan, rotate the secret."""

from fastapi import APIRouter, HTTPException

from kaon.admin.deps import Db, SealerDep, Workspace
from kaon.admin.errors import CONFLICT
from kaon.admin.paging import Paging
from kaon.admin.schemas import InputCreate, InputCreated, InputOut, InputPatch, Inputs
from kaon.errors import Conflict, NotFound
from kaon.governance.plans_store import PlanStore
from kaon.store.config import ConfigStore, Input

router = APIRouter(tags=["inputs"])


def _out(item: Input, plans: dict[str, tuple[str, int | None]] | None = None) -> InputOut:
    plan_id, version = (plans or {}).get(item.id, (None, None))
    return InputOut(**{f: getattr(item, f) for f in InputOut.model_fields if hasattr(item, f)},
                    created_unixtime_ms=item.created_ms, default_plan_id=plan_id, default_plan_version=version)


def _created(item: Input, secret: str | None) -> InputCreated:
    return InputCreated(**_out(item).model_dump(), secret=secret)


@router.get("/inputs", response_model=Inputs)
def list_inputs(db: Db, sealer: SealerDep, workspace_id: Workspace, page: Paging) -> Inputs:
    """Oldest first."""
    store = ConfigStore(db.conn(), sealer)
    plans = PlanStore(db.conn(), workspace_id).default_plans()
    rows = store.inputs_page(workspace_id, page.limit + 1, page.after(int, str))
    shown, next_cursor = page.take(rows, lambda item: (item.created_ms, item.id))
    return Inputs(inputs=[_out(item, plans) for item in shown], next_cursor=next_cursor)


@router.post("/inputs", response_model=InputCreated, status_code=201, responses=CONFLICT)
def create_input(body: InputCreate, db: Db, sealer: SealerDep, workspace_id: Workspace) -> InputCreated:
    try:
        made = ConfigStore(db.conn(), sealer).create_input(
            workspace_id, body.name, body.platform, feed=body.feed, allow_key_only=body.allow_key_only,
            rate_limit_rps=body.rate_limit_rps,
        )
    except Conflict as error:
        raise HTTPException(409, detail={"code": "CONFLICT", "message": str(error)}) from None
    return _created(made.input, made.secret)


@router.get("/inputs/{input_id}", response_model=InputOut)
def get_input(input_id: str, db: Db, sealer: SealerDep, workspace_id: Workspace) -> InputOut:
    store = ConfigStore(db.conn(), sealer)
    try:
        return _out(store.input(input_id, workspace_id), PlanStore(db.conn(), workspace_id).default_plans())
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None


@router.patch("/inputs/{input_id}", response_model=InputOut)
def patch_input(input_id: str, body: InputPatch, db: Db, sealer: SealerDep, workspace_id: Workspace) -> InputOut:
    """`enabled`, and/or `default_plan_id` (null clears it) with `default_plan_version` (null: latest active)."""
    store = ConfigStore(db.conn(), sealer)
    given = body.model_fields_set
    if "default_plan_version" in given and body.default_plan_version is not None and body.default_plan_id is None:
        raise HTTPException(400, detail={"code": "INVALID_REQUEST",
                                         "message": "`default_plan_version` needs `default_plan_id`"})
    try:
        item = store.input(input_id, workspace_id)
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
    if "default_plan_id" in given:
        try:
            PlanStore(db.conn(), workspace_id).set_default_plan(input_id, body.default_plan_id,
                                                             body.default_plan_version)
        except NotFound as error:
            raise HTTPException(400, detail={"code": "UNKNOWN_PLAN", "message": str(error)}) from None
    if body.enabled is not None:
        item = store.set_enabled(input_id, body.enabled, workspace_id)
    return _out(item, PlanStore(db.conn(), workspace_id).default_plans())


@router.post("/inputs/{input_id}/rotate-secret", response_model=InputCreated)
def rotate_secret(input_id: str, db: Db, sealer: SealerDep, workspace_id: Workspace) -> InputCreated:
    try:
        made = ConfigStore(db.conn(), sealer).rotate_secret(input_id, workspace_id)
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
    return _created(made.input, made.secret)
