"""`/api/v1/inputs`: list, create, enable/disable, rotate the secret."""

from fastapi import APIRouter, HTTPException

from kaon.admin.deps import Db, SealerDep, Workspace
from kaon.admin.schemas import InputCreate, InputCreated, InputOut, InputPatch
from kaon.errors import Conflict, NotFound
from kaon.store.config import ConfigStore, Input

router = APIRouter()


def _out(item: Input) -> InputOut:
    return InputOut(**{f: getattr(item, f) for f in InputOut.model_fields})


def _created(item: Input, secret: str | None) -> InputCreated:
    return InputCreated(**_out(item).model_dump(), secret=secret)


@router.get("/inputs", response_model=list[InputOut])
def list_inputs(db: Db, sealer: SealerDep, workspace_id: Workspace) -> list[InputOut]:
    return [_out(item) for item in ConfigStore(db.conn(), sealer).inputs(workspace_id)]


@router.post("/inputs", response_model=InputCreated, status_code=201)
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
    try:
        return _out(ConfigStore(db.conn(), sealer).input(input_id, workspace_id))
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None


@router.patch("/inputs/{input_id}", response_model=InputOut)
def patch_input(input_id: str, body: InputPatch, db: Db, sealer: SealerDep, workspace_id: Workspace) -> InputOut:
    try:
        return _out(ConfigStore(db.conn(), sealer).set_enabled(input_id, body.enabled, workspace_id))
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None


@router.post("/inputs/{input_id}/rotate-secret", response_model=InputCreated)
def rotate_secret(input_id: str, db: Db, sealer: SealerDep, workspace_id: Workspace) -> InputCreated:
    try:
        made = ConfigStore(db.conn(), sealer).rotate_secret(input_id, workspace_id)
    except NotFound as error:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None
    return _created(made.input, made.secret)
