"""Profiles: `/api/v1/profiles...` (view, lookup, events, merges, unmerge) and identity settings."""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, HTTPException, Query

from kaon.admin.deps import Db, Workspace
from kaon.admin.schemas import EventOut, EventPage
from kaon.clock import now_ms
from kaon.errors import Conflict, NotFound
from kaon.identity.extract import normalise
from kaon.identity.merge import unmerge
from kaon.identity.policy import IdentityPolicy
from kaon.identity.service import load_policy
from kaon.identity.store import ProfileStore
from kaon.identity.views import merges_of, profile_view
from kaon.model.identities import BATCH_ALIASES, IDSYNC_TO_CANONICAL
from kaon.store.config import ConfigStore
from kaon.store.events import EventStore
from kaon.store.tx import transaction
from kaon.types import EventId

router = APIRouter(tags=["profiles"])


def _missing(mpid: int) -> HTTPException:
    return HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No profile with mpid {mpid}."})


@router.get("/profiles/{mpid}")
def get_profile(mpid: int, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    view = profile_view(db.conn(), workspace_id, mpid) if -(2**63) <= mpid < 2**63 else None
    if view is None:
        raise _missing(mpid)
    return view


@router.get("/profiles")
def find_profile(
    db: Db, workspace_id: Workspace,
    identity_type: Annotated[str, Query(min_length=1, max_length=64)],
    value: Annotated[str, Query(min_length=1, max_length=4096)],
) -> dict[str, Any]:
    canonical = BATCH_ALIASES.get(identity_type) or IDSYNC_TO_CANONICAL.get(identity_type, identity_type)
    conn = db.conn()
    owner = ProfileStore(conn, workspace_id).owners([(canonical, normalise(canonical, value))])
    view = profile_view(conn, workspace_id, next(iter(owner.values()))) if owner else None
    if view is None:
        raise HTTPException(404, detail={"code": "NOT_FOUND",
                                         "message": f"No profile holds {identity_type} {value!r}."})
    return view


@router.get("/profiles/{mpid}/events", response_model=EventPage)
def profile_events(
    mpid: int, db: Db, workspace_id: Workspace, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
) -> EventPage:
    conn = db.conn()
    live = ProfileStore(conn, workspace_id).live(mpid) if -(2**63) <= mpid < 2**63 else None
    if live is None:
        raise _missing(mpid)
    rows = EventStore(conn).page(workspace_id, limit, EventId(int(cursor)) if cursor else None, mpid=live)
    return EventPage(events=[EventOut(**r) for r in rows],
                     next_cursor=str(rows[-1]["id"]) if len(rows) == limit else None)


@router.get("/profiles/{mpid}/merges")
def profile_merges(mpid: int, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    conn = db.conn()
    if not -(2**63) <= mpid < 2**63 or ProfileStore(conn, workspace_id).row(mpid) is None:
        raise _missing(mpid)
    return {"merges": merges_of(conn, workspace_id, mpid)}


@router.post("/profiles/{mpid}/unmerge")
def unmerge_profile(
    mpid: int, db: Db, workspace_id: Workspace,
    merge_id: Annotated[int | None, Body(embed=True, ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    """Undo a merge into this profile: the given `merge_id`, or the latest one not undone."""
    conn = db.conn()
    if not -(2**63) <= mpid < 2**63:
        raise _missing(mpid)
    with transaction(conn):
        if merge_id is None:
            row = conn.execute(
                "SELECT id FROM merges WHERE workspace_id = ? AND survivor_mpid = ? AND undone_ms IS NULL"
                " ORDER BY id DESC LIMIT 1", (workspace_id, mpid)).fetchone()
            if row is None:
                raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No merge into {mpid} to undo."})
            merge_id = int(row[0])
        else:
            row = conn.execute("SELECT survivor_mpid FROM merges WHERE workspace_id = ? AND id = ?",
                               (workspace_id, merge_id)).fetchone()
            if row is None or int(row[0]) != mpid:
                raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No merge {merge_id} into {mpid}."})
        try:
            return unmerge(conn, workspace_id, merge_id, actor="admin", now_ms=now_ms())
        except Conflict as error:
            raise HTTPException(409, detail={"code": "CONFLICT", "message": str(error)}) from None
        except NotFound as error:
            raise HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)}) from None


@router.get("/settings/identity", tags=["settings"])
def identity_settings(db: Db, workspace_id: Workspace) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(load_policy(db.conn(), workspace_id))
    return result


@router.put("/settings/identity", tags=["settings"])
def set_identity_settings(body: Annotated[dict[str, Any], Body()], db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """Replace the workspace's identity settings (strategy, priority, unique_types, login_types, limits,
    blocked_values); fields left out take their defaults."""
    try:
        policy = msgspec.convert(body, IdentityPolicy)
    except (msgspec.ValidationError, ValueError) as error:
        raise HTTPException(400, detail={"code": "INVALID_SETTINGS", "message": str(error)}) from None
    ConfigStore(db.conn()).set_setting(workspace_id, "identity", msgspec.to_builtins(policy))
    result: dict[str, Any] = msgspec.to_builtins(policy)
    return result
