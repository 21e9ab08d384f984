"""The standard columns of one event as warehouse-style outputs (files, PostgreSQL) write it."""

from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import msgspec

from kaon.activation.membership import Membership
from kaon.destinations.event import DeliveryEvent
from kaon.model.events import event_name

# In output order; JSON columns hold objects (JSON Lines) or JSON text (Parquet) or jsonb (PostgreSQL).
COLUMNS: Final = (
    "event_id", "source_message_id", "event_type", "event_name", "timestamp", "timestamp_ms", "mpid",
    "workspace_id", "input_id", "environment", "identities", "user_attributes", "attributes", "data",
)
JSON_COLUMNS: Final = frozenset({"identities", "user_attributes", "attributes", "data"})
# The rows of `audience_memberships/` (a sync audience connection's changes), in output order.
MEMBERSHIP_COLUMNS: Final = ("event_id", "source_message_id", "audience_id", "audience_name", "mpid", "action",
                             "cause", "timestamp", "timestamp_ms", "identities")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def moment(timestamp_ms: int) -> datetime:
    """The event time as an aware UTC datetime (exact to the millisecond, no float rounding)."""
    return _EPOCH + timedelta(milliseconds=timestamp_ms)


def iso_utc(timestamp_ms: int) -> str:
    return moment(timestamp_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day(timestamp_ms: int) -> date:
    """The UTC date an event belongs to: its partition (event time, so late data lands on its own day)."""
    return moment(timestamp_ms).date()


def event_row(item: DeliveryEvent) -> dict[str, Any]:
    """One row: the standard columns, with JSON columns as Python objects."""
    body: dict[str, Any] = msgspec.to_builtins(item.event)
    return {
        "event_id": item.event_id,
        "source_message_id": item.source_message_id,
        "event_type": item.event_type,
        "event_name": event_name(item.event),
        "timestamp": iso_utc(item.timestamp_ms),
        "timestamp_ms": item.timestamp_ms,
        "mpid": None if item.mpid is None else str(item.mpid),
        "workspace_id": item.workspace_id,
        "input_id": item.input_id,
        "environment": item.environment,
        "identities": {k: v for k, v in item.user_identities.items() if v is not None},
        "user_attributes": msgspec.to_builtins(item.user_attributes),
        "attributes": msgspec.to_builtins(item.attributes()),
        "data": body.get("data", {}),
    }


def membership_row(item: DeliveryEvent, change: Membership) -> dict[str, Any]:
    """One membership change: `event_id` is its delivery job's (unique, the same on every retry)."""
    cause = (item.event.data.custom_attributes or {}).get("cause")
    return {"event_id": item.event_id, "source_message_id": item.source_message_id, "audience_id": change.audience_id,
            "audience_name": change.audience_name, "mpid": str(change.mpid), "action": change.action,
            "cause": None if cause is None else str(cause), "timestamp": iso_utc(change.at_ms),
            "timestamp_ms": change.at_ms, "identities": dict(change.identities)}
