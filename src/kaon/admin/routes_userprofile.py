"""mParticle-compatible Profile API: `/userprofile/v1/{org}/{account}/{workspace}/{mpid}` and `/resolve`.

Org and account are accepted as given; the workspace must be the admin token's.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query

from kaon.admin.deps import Db, Reader, Workspace
from kaon.admin.identity_types import canonical_type
from kaon.identity.extract import normalise
from kaon.identity.store import ProfileStore
from kaon.identity.views import PROFILE_API_SECTIONS, profile_api_view

router = APIRouter(prefix="/userprofile/v1", tags=["profile api"])
Fields = Annotated[str, Query(description=f"comma-separated: {', '.join(PROFILE_API_SECTIONS)}")]


def _fields(fields: str) -> set[str]:
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    unknown = wanted - set(PROFILE_API_SECTIONS) - {"attribution"}
    if unknown:
        raise HTTPException(400, detail={"code": "INVALID_FIELDS",
                                         "message": f"unknown fields: {', '.join(sorted(unknown))} - at `fields`"})
    return wanted


def _workspace(path_workspace: str, token_workspace: str) -> None:
    if path_workspace != token_workspace:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": "No such workspace for this token."})


def _by_mpid(db: Db, workspace: str, mpid: int, fields: set[str]) -> dict[str, Any]:
    view = profile_api_view(db.conn(), workspace, mpid, fields) if -(2**63) <= mpid < 2**63 else None
    if view is None:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No profile with mpid {mpid}."})
    return view


# Fix: `/resolve/...` is declared before the by-mpid routes; declared after them, POST `/resolve/{org}/{account}/
# {workspace}` matched `/{org}/{account}/{workspace}/{mpid}` (org "resolve") and answered 400 for the mpid.
@router.post("/resolve/{org_id}/{account_id}/{workspace_id}")
def resolve(
    org_id: str, account_id: str, workspace_id: str, db: Db, token_workspace: Reader,
    identity: Annotated[dict[str, str], Body(embed=True)],
    environment_type: Annotated[str, Body(embed=True)] = "production",
    fields: Fields = "user_identities,device_identities,user_attributes",
) -> dict[str, Any]:
    """The profile holding `{"identity": {"type", "value"}}`."""
    _workspace(workspace_id, token_workspace)
    wanted = _fields(fields)  # Fix: a bad `fields` is a 400 whether or not the identity is found (was 404 first)
    identity_type, value = identity.get("type"), identity.get("value")
    if not identity_type or not value:
        raise HTTPException(400, detail={"code": "INVALID_SHAPE",
                                         "message": "identity needs type and value - at `$.identity`"})
    canonical = canonical_type(identity_type, "$.identity.type")
    owner = ProfileStore(db.conn(), workspace_id).owners([(canonical, normalise(canonical, value))])
    if not owner:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No profile holds {identity_type}."})
    return _by_mpid(db, workspace_id, next(iter(owner.values())), wanted)


@router.get("/{org_id}/{account_id}/{workspace_id}/{mpid}")
def profile_get(org_id: str, account_id: str, workspace_id: str, mpid: int, db: Db, token_workspace: Workspace,
                fields: Fields = "user_identities,device_identities,user_attributes") -> dict[str, Any]:
    _workspace(workspace_id, token_workspace)
    return _by_mpid(db, workspace_id, mpid, _fields(fields))


@router.post("/{org_id}/{account_id}/{workspace_id}/{mpid}")
def profile_post(org_id: str, account_id: str, workspace_id: str, mpid: int, db: Db, token_workspace: Reader,
                 fields: Fields = "user_identities,device_identities,user_attributes") -> dict[str, Any]:
    return profile_get(org_id, account_id, workspace_id, mpid, db, token_workspace, fields)
