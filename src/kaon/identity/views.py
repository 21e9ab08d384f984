"""Read models of a profile: Kaon's admin view and mParticle's Profile API shape."""

from typing import Any

import msgspec

from kaon.audiences.engine import current_values, memberships
from kaon.clock import now_ms
from kaon.identity.store import ProfileStore
from kaon.model.identities import DEVICE_IDENTITY_TYPES
from kaon.store.sql import Conn

DEVICE_TYPES = frozenset((*DEVICE_IDENTITY_TYPES, "device_application_stamp"))
# Profile API spellings of device identities (wire-format reference §4.3).
PROFILE_API_DEVICE_NAMES = {
    "ios_idfv": "ios_vendor_id", "android_advertising_id": "google_advertising_id", "android_uuid": "android_id",
}
PROFILE_API_SECTIONS = ("user_identities", "device_identities", "user_attributes", "audience_memberships")

_decode = msgspec.json.Decoder()


def profile_view(conn: Conn, workspace_id: str, mpid: int) -> dict[str, Any] | None:
    store = ProfileStore(conn, workspace_id)
    live = store.live(mpid)
    if live is None:
        return None
    row = store.row(live)
    assert row is not None
    identities = store.identities(live)
    return {
        "mpid": str(live),
        "requested_mpid": str(mpid),
        "created_unixtime_ms": row["created_ms"],
        "first_seen_unixtime_ms": row["first_seen_ms"],
        "last_seen_unixtime_ms": row["last_seen_ms"],
        "session_count": row["session_count"],
        "is_opted_out": row["is_opted_out"],
        "consent_state": row["consent"],
        "user_identities": [{"type": t, "value": v, "first_seen_unixtime_ms": s}
                            for t, v, s in identities if t not in DEVICE_TYPES],
        "device_identities": [{"type": t, "value": v, "first_seen_unixtime_ms": s}
                              for t, v, s in identities if t in DEVICE_TYPES],
        "user_attributes": {n: v for n, (v, _) in store.attributes(live).items()},
        "calculated_attributes": current_values(conn, workspace_id, live, now_ms()),
        "audience_memberships": memberships(conn, workspace_id, live),
    }


def _attribute(value: object) -> object:
    """Profile API attribute values are strings; lists are returned sorted."""
    if isinstance(value, list):
        return sorted(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def profile_api_view(conn: Conn, workspace_id: str, mpid: int, fields: set[str]) -> dict[str, Any] | None:
    view = profile_view(conn, workspace_id, mpid)
    if view is None:
        return None
    out: dict[str, Any] = {
        "mpid": int(view["mpid"]),
        "created_timestamp_ms": view["created_unixtime_ms"],
        "last_stored_timestamp_ms": view["last_seen_unixtime_ms"],
        "is_opted_out": view["is_opted_out"],
        "limit_ad_tracking": None,
        "account_userattributes": None,
    }
    if "user_identities" in fields:
        out["user_identities"] = [{"type": i["type"], "encoding": "none", "value": i["value"]}
                                  for i in view["user_identities"]]
    if "device_identities" in fields:
        out["device_identities"] = [
            {"type": PROFILE_API_DEVICE_NAMES.get(i["type"], i["type"]), "encoding": "none", "value": i["value"]}
            for i in view["device_identities"] if i["type"] != "device_application_stamp"]
    if "user_attributes" in fields:
        # A calculated attribute wins over a user attribute of the same name (mParticle).
        merged = {**view["user_attributes"], **view["calculated_attributes"]}
        out["user_attributes"] = {n: _attribute(v) for n, v in merged.items()}
    if "audience_memberships" in fields:
        out["audience_memberships"] = [{"audience_id": m["audience_id"], "audience_name": m["audience_name"],
                                        "expiration_timestamp_ms": None} for m in view["audience_memberships"]]
    return out


def merges_of(conn: Conn, workspace_id: str, mpid: int, limit: int = -1,
              after: int | None = None) -> list[dict[str, Any]]:
    """Merges into or of this profile, newest first; `after` is the merge id last shown (limit -1: all)."""
    return ProfileStore(conn, workspace_id).merges_of(mpid, limit, after)
