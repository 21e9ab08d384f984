"""Consent: the workspace's GDPR purposes (settings) and every profile's consent history.

The profile's `consent` column is the current state (per regulation and purpose, the record with the newest
`timestamp_unixtime_ms` wins). `consent_history` keeps every distinct record a batch carried, older ones
included, so what was consented to, when and where, can be shown and audited. An identical record sent again
(the web SDK repeats its consent state on every upload) is not appended twice.

Purposes: until the workspace saves its purpose list (`PUT /api/v1/settings/consent`) nothing is checked;
once saved, a connection's consent rule may only name listed purposes, and batches carrying other purposes
are still stored but counted (`consent_unknown_purpose`, reason = the purpose).
"""

from collections.abc import Iterable
from typing import Any

import msgspec

from kaon.errors import NotFound
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
    used: dict[str, list[str]] = {}
    for connection_id, raw in conn.execute("SELECT id, rules FROM connections WHERE workspace_id = ? ORDER BY id",
                                           (workspace_id,)):
        for purpose in rule_purposes(msgspec.json.decode(raw)):
            used.setdefault(normalise_purpose(purpose), []).append(str(connection_id))
    return used


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """Where a consent record came from: the input, the batch's `source_request_id` and its log position."""

    received_ms: int
    input_id: str | None = None
    source_request_id: str | None = None
    log_partition: str | None = None
    log_seq: int | None = None


_COLUMNS = ("id, mpid, regulation, purpose, consented, document, timestamp_unixtime_ms, location, hardware_id,"
            " received_ms, input_id, source_request_id, log_partition, log_seq, batch_id")


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


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class ConsentHistory:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def append(self, mpid: int, regulation: str, purpose: str, record: dict[str, Any], source: Source) -> int | None:
        """Append one record (unless this profile already holds the identical record); the new row's id."""
        consented = int(bool(record.get("consented")))
        timestamp = int(record.get("timestamp_unixtime_ms") or source.received_ms)
        document, location, hardware = (_text(record.get(k)) for k in ("document", "location", "hardware_id"))
        held = self.conn.execute(
            "SELECT 1 FROM consent_history WHERE workspace_id = ? AND mpid = ? AND regulation = ? AND purpose = ?"
            " AND timestamp_unixtime_ms = ? AND consented = ? AND document IS ? AND location IS ?"
            " AND hardware_id IS ?",
            (self.ws, mpid, regulation, purpose, timestamp, consented, document, location, hardware)).fetchone()
        if held is not None:
            return None
        cursor = self.conn.execute(
            "INSERT INTO consent_history (workspace_id, mpid, regulation, purpose, consented, document,"
            " timestamp_unixtime_ms, location, hardware_id, received_ms, input_id, source_request_id,"
            " log_partition, log_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (self.ws, mpid, regulation, purpose, consented, document, timestamp, location, hardware,
             source.received_ms, source.input_id, source.source_request_id, source.log_partition, source.log_seq))
        return int(cursor.fetchone()[0])

    def append_state(self, mpid: int, state: dict[str, Any], source: Source) -> list[int]:
        """Every record of a `{regulation: {purpose: record}}` state; returns the ids of those appended."""
        ids = (self.append(mpid, regulation, purpose, record, source)
               for regulation, purposes in state.items() for purpose, record in purposes.items())
        return [i for i in ids if i is not None]

    def set_batch(self, ids: list[int], batch_id: int) -> None:
        """Name the stored batch the records came in (known once the batch is stored, later in the slice)."""
        self.conn.execute("UPDATE consent_history SET batch_id = ? WHERE workspace_id = ? AND id IN"
                          " (SELECT value FROM json_each(?))", (batch_id, self.ws, msgspec.json.encode(ids).decode()))

    def history(self, mpids: Iterable[int], limit: int = -1,
                after: tuple[int, int, int] | None = None) -> list[dict[str, Any]]:
        """The records of these profiles, newest (by consent timestamp, then arrival) first; `after` is the
        (timestamp_unixtime_ms, received_ms, id) of the last record shown (limit -1: all)."""
        ids = msgspec.json.encode(sorted(set(mpids))).decode()
        where, args = ("", ()) if after is None else (
            " AND (timestamp_unixtime_ms, received_ms, id) < (?, ?, ?)", after)
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM consent_history WHERE workspace_id = ? AND mpid IN (SELECT value FROM"
            f" json_each(?)){where} ORDER BY timestamp_unixtime_ms DESC, received_ms DESC, id DESC LIMIT ?",
            (self.ws, ids, *args, limit))
        return [{"id": r[0], "mpid": str(r[1]), "regulation": r[2], "purpose": r[3], "consented": bool(r[4]),
                 "document": r[5], "timestamp_unixtime_ms": r[6], "location": r[7], "hardware_id": r[8],
                 "received_ms": r[9], "input_id": r[10], "source_request_id": r[11],
                 "source": None if r[12] is None else f"{r[12]}:{r[13]}", "batch_id": r[14]} for r in rows]

    def ids_of(self, mpid: int) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM consent_history WHERE workspace_id = ? AND mpid = ? ORDER BY id", (self.ws, mpid))]

    def move(self, ids: list[int], from_mpid: int, to_mpid: int) -> int:
        """Re-key these rows (still held by `from_mpid`) to `to_mpid`; returns how many moved."""
        moved = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            moved += self.conn.execute(
                f"UPDATE consent_history SET mpid = ? WHERE workspace_id = ? AND mpid = ? AND id IN"
                f" ({','.join('?' * len(chunk))})", (to_mpid, self.ws, from_mpid, *chunk)).rowcount
        return moved
