"""Consent: the workspace's GDPR purposes (`/api/v1/settings/consent`) and a profile's consent with its history
(`/api/v1/profiles/{mpid}/consent`). Batches naming unknown purposes are counted at `/stats/consent` (routes_stats)."""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, HTTPException

from kaon.admin.deps import Db, Workspace
from kaon.admin.errors import CONFLICT
from kaon.admin.paging import Paging
from kaon.admin.schemas_profiles import ConsentRecord, ConsentSettings, ProfileConsent
from kaon.governance.consent import SETTING, load_settings, parse_settings, purposes_in_use
from kaon.governance.consent_store import ConsentHistory
from kaon.identity.store import ProfileStore
from kaon.store.config import ConfigStore

router = APIRouter(tags=["consent"])


def _shown(settings: Any, configured: bool) -> dict[str, Any]:
    shown: dict[str, Any] = msgspec.to_builtins(settings)
    shown["configured"] = configured
    return shown


@router.get("/settings/consent", tags=["settings"], response_model=ConsentSettings)
def consent_settings(db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """The workspace's GDPR purposes; `configured` is false until they are first saved (nothing is checked)."""
    settings = load_settings(db.conn(), workspace_id)
    return _shown(settings if settings is not None else {"gdpr_purposes": []}, settings is not None)


@router.put("/settings/consent", tags=["settings"], response_model=ConsentSettings, responses=CONFLICT)
def set_consent_settings(body: Annotated[dict[str, Any], Body()], db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """Replace the workspace's GDPR purposes (`{"gdpr_purposes": [{"name", "description"}]}`; names are trimmed
    and lower-cased). A purpose a connection's consent rule still names cannot be removed (409)."""
    try:
        settings = parse_settings(body)
    except (msgspec.ValidationError, ValueError) as error:
        raise HTTPException(400, detail={"code": "INVALID_SETTINGS", "message": str(error)}) from None
    conn = db.conn()
    used = purposes_in_use(conn, workspace_id)
    missing = sorted(set(used) - settings.names())
    if missing:
        named = "; ".join(f"{p!r} by {', '.join(used[p])}" for p in missing)
        raise HTTPException(409, detail={"code": "PURPOSE_IN_USE",
                                         "message": f"purposes still used by connections: {named}"})
    ConfigStore(conn).set_setting(workspace_id, SETTING, msgspec.to_builtins(settings))
    return _shown(settings, True)


@router.get("/profiles/{mpid}/consent", tags=["profiles"], response_model=ProfileConsent)
def profile_consent(mpid: int, db: Db, workspace_id: Workspace, page: Paging) -> ProfileConsent:
    """The profile's current consent (newest record per purpose) and a page of every record received, newest
    (by consent timestamp, then arrival) first."""
    conn = db.conn()
    store = ProfileStore(conn, workspace_id)
    live = store.live(mpid) if -(2**63) <= mpid < 2**63 else None
    row = store.row(live) if live is not None else None
    if live is None or row is None:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No profile with mpid {mpid}."})
    after = page.after(int, int, int)
    records = ConsentHistory(conn, workspace_id).history(
        [live], page.limit + 1, None if after is None else (after[0], after[1], after[2]))
    shown, next_cursor = page.take(records, lambda r: (r["timestamp_unixtime_ms"], r["received_ms"], r["id"]))
    return ProfileConsent(
        mpid=str(live), current=row["consent"], is_opted_out=row["is_opted_out"], next_cursor=next_cursor,
        history=[ConsentRecord(received_unixtime_ms=r["received_ms"],
                               **{k: v for k, v in r.items() if k != "received_ms"}) for r in shown])
