"""Generic webhook: the canonical event as JSON, optionally batched, signed with HMAC-SHA256."""

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import SendPolicy

_encoder = msgspec.json.Encoder()


class WebhookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[str, msgspec.Meta(
        title="URL", description="Where to POST the events.", examples=["https://example.com/hooks/kaon"],
        pattern=r"^https?://")]
    batch: Annotated[bool, msgspec.Meta(
        title="Batch", description='Send up to 100 events per request as {"batch": [...]}.')] = False
    signing_secret: Annotated[Secret | None, msgspec.Meta(
        title="Signing secret",
        description="When set, each request carries X-Kaon-Signature: hex HMAC-SHA256 of "
                    "`<X-Kaon-Timestamp>.<body>` with this secret.")] = None
    headers: Annotated[dict[str, str], msgspec.Meta(
        title="Headers", description="Extra headers sent with every request.")] = {}


def event_json(item: DeliveryEvent) -> dict[str, Any]:
    """The canonical event with its profile context, as the webhook body carries it."""
    body: dict[str, Any] = msgspec.to_builtins(item.event)
    out = {
        "event_id": item.event_id,
        "source_message_id": item.source_message_id,
        "event_type": item.event_type,
        "timestamp_unixtime_ms": item.timestamp_ms,
        "mpid": None if item.mpid is None else str(item.mpid),
        "environment": item.environment,
        "input_id": item.input_id,
        "user_identities": {k: v for k, v in item.user_identities.items() if v is not None},
        "user_attributes": item.user_attributes,
        "data": body.get("data", {}),
    }
    if context := context_json(item):
        out["context"] = context
    if item.system_notifications:  # the batch changed the profile's consent (mParticle's outbound field)
        out["system_notifications"] = item.system_notifications
    return out


def context_json(item: DeliveryEvent) -> dict[str, Any]:
    """The whole context of the event's batch, shaped as the admin API's event `context`: `ip`, `device_info`,
    `application_info`, and the web context (page, campaign, library, locale, timezone, traits, ...)."""
    out: dict[str, Any] = {k: msgspec.to_builtins(v) for k, v in (
        ("ip", item.ip), ("device_info", item.device_info), ("application_info", item.application_info)) if v}
    if item.context is not None:
        out.update(msgspec.to_builtins(item.context))
    return out


class Webhook(Destination):
    name = "webhook"
    title = "Webhook"
    category = "Custom"
    description = "POSTs each event (or a batch) as JSON to your URL, optionally HMAC-signed."
    settings_type = WebhookSettings
    policy = SendPolicy(batch_size=100, max_concurrency=4)
    docs_notes = (
        "`POST {base_url}`, `Content-Type: application/json`: one event per request, or up to 100 as "
        '`{"batch": [...]}`. Headers: `Idempotency-Key` (the source message ids), `X-Kaon-Timestamp` (s), and '
        "with a signing secret `X-Kaon-Signature` = hex HMAC-SHA256 of `<timestamp>.<body>`. 2xx delivered; "
        "408, 429 and 5xx retried (honouring `Retry-After`); other 4xx abort.")
    mapping_notes = (
        ("every event", "`{event_id, source_message_id, event_type, timestamp_unixtime_ms, mpid, environment, "
                        "input_id, user_identities, user_attributes, data, context, system_notifications?}`: `data` "
                        "is the canonical event's data; `context` the whole context of its batch, shaped as the "
                        "admin API's event `context` (`ip`, `device_info`, `application_info`, `page`, `campaign`, "
                        "`library`, `referrer`, `locale`, `timezone`, `os_name`, `location`, `traits`, "
                        "`data_plan`)"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, WebhookSettings)
        groups = [list(range(len(events)))] if settings.batch else [[i] for i in range(len(events))]
        requests = []
        for group in groups:
            if settings.batch:
                body = _encoder.encode({"batch": [event_json(events[i]) for i in group]})
            else:
                body = _encoder.encode(event_json(events[group[0]]))
            timestamp = str(max(events[i].timestamp_ms for i in group) // 1000)
            headers = {"Content-Type": "application/json", **settings.headers,
                       "Idempotency-Key": ",".join(events[i].source_message_id for i in group)[:512],
                       "X-Kaon-Timestamp": timestamp}
            if settings.signing_secret:
                signed = timestamp.encode() + b"." + body
                headers["X-Kaon-Signature"] = hmac.new(settings.signing_secret.encode(), signed,
                                                       hashlib.sha256).hexdigest()
            requests.append(HttpRequest("POST", settings.base_url, headers, body, tuple(group)))
        return requests


destination = Webhook()
