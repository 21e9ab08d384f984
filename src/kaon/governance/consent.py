"""Consent: the workspace's GDPR purposes (settings) and every profile's consent history.

The profile's `consent` column is the current state (per regulation and purpose, the record with the newest
`timestamp_unixtime_ms` wins). `consent_history` (kept by `kaon.governance.consent_store`) keeps every distinct
record a batch carried, older ones included, so what was consented to, when and where, can be shown and audited.
An identical record sent again (the web SDK repeats its consent state on every upload) is not appended twice.

Purposes: until the workspace saves its purpose list (`PUT /api/v1/settings/consent`) nothing is checked;
once saved, a connection's consent rule may only name listed purposes, and batches carrying other purposes
are still stored but counted (`consent_unknown_purpose`, reason = the purpose).
"""

from typing import Any

import msgspec

from kaon.errors import NotFound

# Re-exported: kaon.identity.merge still imports it from here.
from kaon.store.config import ConfigStore
from kaon.store.sql import Conn

SETTING = "consent"
MAX_PURPOSES = 200


def normalise_purpose(name: str) -> str:
    """As the web SDK does: trimmed and lower-cased."""
    return name.strip().lower()


class Purpose(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""


class ConsentSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    gdpr_purposes: list[Purpose] = []

    def names(self) -> set[str]:
        return {p.name for p in self.gdpr_purposes}


def parse_settings(raw: Any) -> ConsentSettings:
    """Validate and normalise a settings document; ValueError/msgspec.ValidationError naming the bad field."""
    settings = msgspec.convert(raw, ConsentSettings)
    if len(settings.gdpr_purposes) > MAX_PURPOSES:
        raise ValueError(f"at most {MAX_PURPOSES} purposes - at `gdpr_purposes`")
    seen: set[str] = set()
    out: list[Purpose] = []
    for i, purpose in enumerate(settings.gdpr_purposes):
        name = normalise_purpose(purpose.name)
        if not name:
            raise ValueError(f"a purpose needs a name - at `gdpr_purposes[{i}].name`")
        if len(name) > 100:
            raise ValueError(f"purpose names are at most 100 characters - at `gdpr_purposes[{i}].name`")
        if name in seen:
            raise ValueError(f"purpose {name!r} is listed twice - at `gdpr_purposes[{i}].name`")
        if len(purpose.description) > 1000:
            raise ValueError(f"descriptions are at most 1000 characters - at `gdpr_purposes[{i}].description`")
        seen.add(name)
        out.append(Purpose(name=name, description=purpose.description.strip()))
    return ConsentSettings(gdpr_purposes=out)


def load_settings(conn: Conn, workspace_id: str) -> ConsentSettings | None:
    """The workspace's consent settings; None when never configured (or the workspace is gone)."""
    try:
        raw = ConfigStore(conn).settings(workspace_id).get(SETTING)
    except NotFound:
        return None
    return None if raw is None else msgspec.convert(raw, ConsentSettings)


def rule_purposes(rules: dict[str, Any]) -> list[str]:
    consent = rules.get("consent")
    purposes = (consent.get("gdpr_purposes") or []) if isinstance(consent, dict) else []
    return [p for p in purposes if isinstance(p, str)]


def check_rule_purposes(conn: Conn, workspace_id: str, rules: dict[str, Any]) -> None:
    """Refuse (ValueError naming it) a connection consent rule that names a purpose the workspace does not list."""
    settings = load_settings(conn, workspace_id)
    if settings is None:
        return
    known = settings.names()
    for i, purpose in enumerate(rule_purposes(rules)):
        if normalise_purpose(purpose) not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise ValueError(f"unknown GDPR purpose {purpose!r}: the workspace lists {listed}"
                             f" - at `consent.gdpr_purposes[{i}]`")


def purposes_in_use(conn: Conn, workspace_id: str) -> dict[str, list[str]]:
    """Normalised purpose → ids of the connections whose consent rule names it."""
    from kaon.store.outputs import connection_rules  # kaon.store.outputs checks rules with this module

    used: dict[str, list[str]] = {}
    for connection_id, rules in connection_rules(conn, workspace_id):
        for purpose in rule_purposes(rules):
            used.setdefault(normalise_purpose(purpose), []).append(connection_id)
    return used


# mParticle's system notification per regulation (on the outbound batch when a batch changes a profile's consent).
NOTIFICATION_TYPES = {"gdpr": "gdpr_change", "ccpa": "ccpa_change"}
_RECORD_FIELDS = ("document", "consented", "timestamp_unixtime_ms", "location", "hardware_id")
# What makes a record a change: the same consent re-stated later (a newer timestamp only) is none.
_CHANGE_FIELDS = ("document", "consented", "location", "hardware_id")


def consent_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """mParticle's `system_notifications` for the purposes whose current record differs between two states
    (in consent, document, location or hardware id; not only in its timestamp):
    `{"type": "gdpr_change", "data": {"purpose", "current": {regulation, document, consented,
    timestamp_unixtime_ms, location, hardware_id}, "old": {…} or null}}`."""
    out = []
    for regulation, purposes in new.items():
        kind = NOTIFICATION_TYPES.get(regulation)
        if kind is None:
            continue
        for purpose, record in purposes.items():
            before = old.get(regulation, {}).get(purpose)
            if before is not None and all(before.get(name) == record.get(name) for name in _CHANGE_FIELDS):
                continue
            out.append({"type": kind, "data": {"purpose": purpose, "current": _notified(regulation, record),
                                               "old": None if before is None else _notified(regulation, before)}})
    return out


def _notified(regulation: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"regulation": regulation, **{name: record.get(name) for name in _RECORD_FIELDS}}
