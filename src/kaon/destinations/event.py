"""What a destination receives: one canonical event with the context of its batch and profile."""

from typing import Any

import msgspec

from kaon.model.batch import ApplicationInfo, ConsentState, DeviceInfo
from kaon.model.events import Event
from kaon.model.values import AttrValue


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    event_id: int
    workspace_id: str
    input_id: str
    mpid: int | None
    event: Event
    source_message_id: str
    timestamp_ms: int
    environment: str = "production"
    ip: str | None = None
    user_identities: dict[str, str | None] = {}
    user_attributes: dict[str, AttrValue] = {}
    device_info: DeviceInfo | None = None
    application_info: ApplicationInfo | None = None
    consent_state: ConsentState | None = None
    # The consent changes the event's batch made to the profile (mParticle's outbound `system_notifications`).
    system_notifications: list[dict[str, Any]] = []

    @property
    def event_type(self) -> str:
        return self.event.event_type

    def identity(self, name: str) -> str | None:
        return self.user_identities.get(name)

    def attributes(self) -> dict[str, Any]:
        return dict(self.event.data.custom_attributes or {})
