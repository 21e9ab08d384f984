"""Profiles: `/api/v1/profiles...` (list and look up, view, events, merges, unmerge) and identity settings."""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, HTTPException, Query

from kaon.admin.deps import Db, Workspace
from kaon.admin.errors import CONFLICT, api_error
from kaon.admin.identity_types import canonical_type
from kaon.admin.paging import Paging
from kaon.admin.routes_events import Filters, event_page
from kaon.admin.schemas import EventPage
from kaon.admin.schemas_profiles import IdentitySettings, Merge, Merges, Profile, Profiles, Unmerge
from kaon.clock import now_ms
from kaon.errors import Conflict, NotFound
from kaon.identity.extract import normalise
from kaon.identity.merge import unmerge
from kaon.identity.policy import IdentityPolicy
from kaon.identity.service import load_policy
from kaon.identity.store import ProfileStore
from kaon.identity.views import merges_of, profile_view
from kaon.store.config import ConfigStore
from kaon.store.tx import transaction

router = APIRouter(tags=["profiles"])
INT64 = range(-(2**63), 2**63)


def _missing(mpid: int) -> HTTPException:
    return HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No profile with mpid {mpid}."})


@router.get("/profiles/{mpid}", response_model=Profile)
def get_profile(mpid: int, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """The live profile: a merged mpid answers with the profile it was merged into (`requested_mpid` says which)."""
    view = profile_view(db.conn(), workspace_id, mpid) if mpid in INT64 else None
    if view is None:
        raise _missing(mpid)
    return view


@router.get("/profiles", response_model=Profiles)
def list_profiles(
    db: Db, workspace_id: Workspace, page: Paging,
    identity_type: Annotated[str | None, Query(min_length=1, max_length=64,
                                               description="With `value`: the profile holding this identity.")] = None,
    value: Annotated[str | None, Query(min_length=1, max_length=4096)] = None,
) -> Profiles:
    """Live profiles in mpid order; with `identity_type` and `value`, the one holding that identity (or none)."""
    conn = db.conn()
    if (identity_type is None) != (value is None):
        raise api_error(400, "INVALID_REQUEST", "give both `identity_type` and `value`, or neither - at "
                                                f"`{'value' if value is None else 'identity_type'}`")
    if identity_type is not None and value is not None:
        canonical = canonical_type(identity_type, "identity_type")
        owner = ProfileStore(conn, workspace_id).owners([(canonical, normalise(canonical, value))])
        views = [profile_view(conn, workspace_id, mpid) for mpid in owner.values()]
        return Profiles(profiles=[Profile(**v) for v in views if v is not None], next_cursor=None)
    after = page.after(int)
    mpids = ProfileStore(conn, workspace_id).live_page(page.limit + 1, None if after is None else after[0])
    shown, next_cursor = page.take(mpids, lambda mpid: (mpid,))
    views = [profile_view(conn, workspace_id, mpid) for mpid in shown]
    return Profiles(profiles=[Profile(**v) for v in views if v is not None], next_cursor=next_cursor)


@router.get("/profiles/{mpid}/events", response_model=EventPage)
def profile_events(mpid: int, db: Db, workspace_id: Workspace, page: Paging, filters: Filters) -> EventPage:
    """The live profile's events (a merged mpid's are the survivor's), newest first, with the events filters."""
    live = ProfileStore(db.conn(), workspace_id).live(mpid) if mpid in INT64 else None
    if live is None:
        raise _missing(mpid)
    return event_page(db, workspace_id, page, msgspec.structs.replace(filters, mpid=live))


@router.get("/profiles/{mpid}/merges", response_model=Merges)
def profile_merges(mpid: int, db: Db, workspace_id: Workspace, page: Paging) -> Merges:
    """Merges into or of this profile, newest first (undone ones included, with who undid them and when)."""
    conn = db.conn()
    if mpid not in INT64 or ProfileStore(conn, workspace_id).row(mpid) is None:
        raise _missing(mpid)
    after = page.after(int)
    rows = merges_of(conn, workspace_id, mpid, page.limit + 1, None if after is None else after[0])
    shown, next_cursor = page.take(rows, lambda row: (row["merge_id"],))
    return Merges(merges=[Merge(**row) for row in shown], next_cursor=next_cursor)


@router.post("/profiles/{mpid}/unmerge", response_model=Unmerge, responses=CONFLICT)
def unmerge_profile(
    mpid: int, db: Db, workspace_id: Workspace,
    merge_id: Annotated[int | None, Body(embed=True, ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    """Undo a merge into this profile: the given `merge_id`, or the latest one not undone."""
    conn = db.conn()
    if mpid not in INT64:
        raise _missing(mpid)
    with transaction(conn):
        store = ProfileStore(conn, workspace_id)
        if merge_id is None:
            merge_id = store.latest_open_merge_into(mpid)
            if merge_id is None:
                raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No merge into {mpid} to undo."})
        else:
            record = store.merge_record(merge_id)
            if record is None or record[0] != mpid:
                raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No merge {merge_id} into {mpid}."})
        try:
            return unmerge(conn, workspace_id, merge_id, actor="admin", now_ms=now_ms())
        except Conflict as error:
            raise HTTPException(409, detail={"code": "CONFLICT", "message": str(error)}) from None
        except NotFound as error:
            raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None


@router.get("/settings/identity", tags=["settings"], response_model=IdentitySettings)
def identity_settings(db: Db, workspace_id: Workspace) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(load_policy(db.conn(), workspace_id))
    return result


def _canonical_types(body: dict[str, Any]) -> dict[str, Any]:
    """The body with every identity type it names in canonical spelling; 400 UNKNOWN_IDENTITY_TYPE otherwise.

    A type the policy does not know would be silently ineffective (the resolver compares canonical names)."""
    out = dict(body)
    for field in ("priority", "unique_types", "login_types"):
        if isinstance(body.get(field), list):
            out[field] = [canonical_type(t, f"{field}[{i}]") if isinstance(t, str) else t
                          for i, t in enumerate(body[field])]
    if isinstance(body.get("limits"), dict):
        out["limits"] = {canonical_type(t, f"limits.{t}"): n for t, n in body["limits"].items()}
    return out


@router.put("/settings/identity", tags=["settings"], response_model=IdentitySettings)
def set_identity_settings(body: Annotated[dict[str, Any], Body()], db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """Replace the workspace's identity settings (strategy, priority, unique_types, login_types, limits,
    blocked_values); fields left out take their defaults. Identity types may be given in any known spelling."""
    try:
        policy = msgspec.convert(_canonical_types(body), IdentityPolicy)
    except (msgspec.ValidationError, ValueError) as error:
        raise HTTPException(400, detail={"code": "INVALID_SETTINGS", "message": str(error)}) from None
    ConfigStore(db.conn()).set_setting(workspace_id, "identity", msgspec.to_builtins(policy))
    result: dict[str, Any] = msgspec.to_builtins(policy)
    return result
