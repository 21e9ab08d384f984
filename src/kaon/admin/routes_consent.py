"""Consent: the workspace's GDPR purposes (`/api/v1/settings/consent`) and a profile's consent with its history
(`/api/v1/profiles/{mpid}/consent`)."""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, HTTPException

from kaon.admin.deps import Db, Workspace
from kaon.governance.consent import SETTING, ConsentHistory, load_settings, parse_settings, purposes_in_use
from kaon.identity.store import ProfileStore
from kaon.store.config import ConfigStore

router = APIRouter(tags=["consent"])


def _shown(settings: Any, configured: bool) -> dict[str, Any]:
    shown: dict[str, Any] = msgspec.to_builtins(settings)
    shown["configured"] = configured
    return shown


@router.get("/settings/consent", tags=["settings"])
def consent_settings(db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """The workspace's GDPR purposes; `configured` is false until they are first saved (nothing is checked)."""
    settings = load_settings(db.conn(), workspace_id)
    return _shown(settings if settings is not None else {"gdpr_purposes": []}, settings is not None)


@router.put("/settings/consent", tags=["settings"])
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


@router.get("/profiles/{mpid}/consent", tags=["profiles"])
def profile_consent(mpid: int, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """The profile's current consent (newest record per purpose) and every record received, newest first."""
    conn = db.conn()
    store = ProfileStore(conn, workspace_id)
    live = store.live(mpid) if -(2**63) <= mpid < 2**63 else None
    row = store.row(live) if live is not None else None
    if live is None or row is None:
        raise HTTPException(404, detail={"code": "NOT_FOUND", "message": f"No profile with mpid {mpid}."})
    return {"mpid": str(live), "current": row["consent"], "is_opted_out": row["is_opted_out"],
            "history": ConsentHistory(conn, workspace_id).history([live])}


@router.get("/stats/consent", tags=["stats"])
def consent_stats(db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """Batches carrying GDPR purposes the workspace does not list (stored, never dropped), per input, hour and
    purpose: the `consent_unknown_purpose` counter of the inputs' hourly stats."""
    rows = db.conn().execute(
        "SELECT input_id, hour_ms, reason, count FROM input_stats WHERE workspace_id = ? AND metric = ?"
        " ORDER BY hour_ms, input_id, reason", (workspace_id, "consent_unknown_purpose"))
    return {"unknown_purposes": [{"input_id": i, "hour_start_unixtime_ms": h, "purpose": p, "count": c}
                                 for i, h, p, c in rows]}
