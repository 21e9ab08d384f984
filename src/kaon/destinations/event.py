"""What a destination receives: one canonical event with the context of its batch and profile."""

from typing import Any

import msgspec

from kaon.model.batch import ApplicationInfo, Batch, BatchContext, ConsentState, DeviceInfo
from kaon.model.context import CampaignContext, PageContext
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
    # The batch's web context (page, campaign, library, locale, ...: what mParticle's fields lack).
    context: BatchContext | None = None
    # The consent changes the event's batch made to the profile (mParticle's outbound `system_notifications`).
    system_notifications: list[dict[str, Any]] = []

    @property
    def event_type(self) -> str:
        return self.event.event_type

    def identity(self, name: str) -> str | None:
        return self.user_identities.get(name)

    def attributes(self) -> dict[str, Any]:
        return dict(self.event.data.custom_attributes or {})

    @property
    def page(self) -> PageContext | None:
        return self.context.page if self.context is not None else None

    @property
    def campaign(self) -> CampaignContext | None:
        return self.context.campaign if self.context is not None else None

    @property
    def user_agent(self) -> str | None:
        return self.device_info.http_header_user_agent if self.device_info is not None else None

    @property
    def locale(self) -> str | None:
        """The locale as sent ("en-US"), else mParticle's language and country joined."""
        if self.context is not None and self.context.locale:
            return self.context.locale
        device = self.device_info
        if device is None or not device.locale_language:
            return None
        return f"{device.locale_language}-{device.locale_country}" if device.locale_country else device.locale_language


def batch_event(batch: Batch, index: int, *, event_id: int, workspace_id: str, input_id: str, received_ms: int,
                system_notifications: list[dict[str, Any]] | None = None) -> DeliveryEvent:
    """The DeliveryEvent of `batch.events[index]`: the event with its batch's identities and context."""
    event = batch.events[index]
    return DeliveryEvent(
        event_id=event_id, workspace_id=workspace_id, input_id=input_id, mpid=batch.mpid, event=event,
        source_message_id=event.data.source_message_id or str(event_id),
        timestamp_ms=event.data.timestamp_unixtime_ms or received_ms,
        environment=batch.environment, ip=batch.ip,
        user_identities={k: v for k, v in (batch.user_identities or {}).items() if v is not None},
        user_attributes=dict(batch.user_attributes), device_info=batch.device_info,
        application_info=batch.application_info, consent_state=batch.consent_state, context=batch.context,
        system_notifications=system_notifications or [],
    )
