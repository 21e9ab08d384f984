"""A membership change as the delivery engine carries it: a custom event `audience_membership_change`.

Audience outputs read it with `membership_of` (the audience, add or delete, the profile's identities); event
outputs (triggers) forward it like any custom event, so "entered Cart abandoners" can start a campaign. The
event's attributes: `audience_id`, `audience_name`, `action` (`add` or `delete`, mParticle's words) and `cause`
(`event`, `time`, `activation`, `merge`, `connected`, `disconnected`, ...).
"""

from dataclasses import dataclass, field
from typing import Any

from kaon.destinations.event import DeliveryEvent
from kaon.model.events import CustomEvent, CustomEventData

MEMBERSHIP_EVENT = "audience_membership_change"
ADD, DELETE = "add", "delete"
# The custom flag that marks a list-sync delivery (an add or remove the output applies to its list); without it
# the event is a trigger, which outputs that take events forward as the custom event it is.
SYNC_FLAG = "Kaon.AudienceSync"
SETTINGS_FLAG = "Kaon.ConnectionSettings"
# A membership change's `input_id` is its audience connection's id: no input's id has this prefix (`in_...`).
CONNECTION_PREFIX = "acn_"  # the connection's settings for its output (`settings.output`)


@dataclass(frozen=True)
class Membership:
    audience_id: str
    audience_name: str
    action: str  # add | delete
    mpid: int
    at_ms: int
    identities: dict[str, str]  # canonical identity type → value (the profile's, or those synced before)
    settings: dict[str, Any] = field(default_factory=dict)  # the connection's settings for this output


def membership_event(*, workspace_id: str, connection_id: str, audience_id: str, audience_name: str, action: str,
                     cause: str, mpid: int, at_ms: int, identities: dict[str, str],
                     attributes: dict[str, Any], message_id: str, sync: bool = True,
                     output_settings: dict[str, Any] | None = None) -> DeliveryEvent:
    flags: dict[str, Any] | None = {SYNC_FLAG: "true"} if sync else None
    if flags is not None and output_settings:
        flags[SETTINGS_FLAG] = output_settings
    data = CustomEventData(event_name=MEMBERSHIP_EVENT, custom_event_type="other", timestamp_unixtime_ms=at_ms,
                           source_message_id=message_id, custom_flags=flags,
                           custom_attributes={"audience_id": audience_id, "audience_name": audience_name,
                                              "action": action, "cause": cause})
    return DeliveryEvent(event_id=0, workspace_id=workspace_id, input_id=connection_id, mpid=mpid,
                         event=CustomEvent(data=data), source_message_id=message_id, timestamp_ms=at_ms,
                         user_identities=dict(identities), user_attributes=attributes)


def membership_of(item: DeliveryEvent) -> Membership | None:
    """The list-sync membership change an audience output is given; None for any other event (triggers too)."""
    event = item.event
    if not item.input_id.startswith(CONNECTION_PREFIX):
        return None  # an ingested event, whatever it claims: only the sync worker makes membership changes
    if not isinstance(event, CustomEvent) or event.data.event_name != MEMBERSHIP_EVENT or item.mpid is None:
        return None
    flags = event.data.custom_flags or {}
    if flags.get(SYNC_FLAG) != "true":
        return None
    settings = flags.get(SETTINGS_FLAG)
    attrs = event.data.custom_attributes or {}
    action = attrs.get("action")
    if action not in (ADD, DELETE):
        return None
    return Membership(audience_id=str(attrs.get("audience_id", "")), audience_name=str(attrs.get("audience_name", "")),
                      action=str(action), mpid=item.mpid, at_ms=item.timestamp_ms,
                      identities={k: v for k, v in item.user_identities.items() if v},
                      settings=dict(settings) if isinstance(settings, dict) else {})
