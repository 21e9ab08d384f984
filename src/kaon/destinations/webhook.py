"""Generic webhook: the canonical event as JSON, optionally batched, signed with HMAC-SHA256."""

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from kaon.destinations.base import SECRET_MARK, Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import SendPolicy

_encoder = msgspec.json.Encoder()


HeaderName = Annotated[str, msgspec.Meta(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
HeaderValue = Annotated[str, msgspec.Meta(pattern=r"^[\x20-\x7e]{0,2000}$")]


SigningSecret = Annotated[Secret | None, msgspec.Meta(
    title="Signing secret",
    description="When set, each request carries X-Kaon-Signature: hex HMAC-SHA256 of "
                "`<X-Kaon-Timestamp>.<body>` with this secret.")]
ExtraHeaders = Annotated[dict[HeaderName, HeaderValue], msgspec.Meta(
    title="Headers", description="Extra headers sent with every request (printable ASCII). Treated as "
                                 "secrets: their values are never returned by the API.",
    extra_json_schema={SECRET_MARK: True})]


class WebhookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[str, msgspec.Meta(
        title="URL", description="Where to POST the events.", examples=["https://example.com/hooks/kaon"],
        pattern=r"^https?://")]
    batch: Annotated[bool, msgspec.Meta(
        title="Batch", description='Send up to 100 events per request as {"batch": [...]}.')] = False
    signing_secret: SigningSecret = None
    headers: ExtraHeaders = {}


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


def idempotency_key(ids: list[str]) -> str:
    """The ids percent-encoded (UTF-8; anything but letters, digits and `-._~:@` is escaped, commas too),
    comma-separated, at most 512 characters: always a legal ASCII header, whatever the ids hold."""
    key = ",".join(urllib.parse.quote(i, safe="-._~:@") for i in ids)[:512]
    return re.sub(r"%[0-9A-F]?$", "", key)  # never end inside an escape


class Webhook(Destination):
    name = "webhook"
    title = "Webhook"
    category = "Custom"
    description = "POSTs each event (or a batch) as JSON to your URL, optionally HMAC-signed."
    settings_type = WebhookSettings
    policy = SendPolicy(batch_size=100, max_concurrency=4)
    docs_notes = (
        "`POST {base_url}` with `Content-Type: application/json`, your `headers`, `Idempotency-Key` (the events' "
        "source message ids, percent-encoded as UTF-8 (anything but letters, digits and `-._~:@`, commas "
        "included), comma-separated, at most 512 characters: the same on every retry, so a receiver can "
        "drop repeats) and `X-Kaon-Timestamp` (unix seconds of the newest event in the body). With a "
        "`signing_secret`, `X-Kaon-Signature` is the lower-case hex HMAC-SHA256 of `<X-Kaon-Timestamp>.<body>` "
        "(the raw body bytes) keyed with the secret: recompute it over the bytes you received, compare in "
        "constant time, and refuse timestamps far from your clock to stop replays. Responses: 2xx → delivered; "
        "408, 429 and 5xx → retried with backoff, honouring `Retry-After`; any other 4xx → aborted "
        "(dead-lettered, replayable).")
    mapping_notes = (
        ("every event (batch: false)", "one JSON object: `event_id`, `source_message_id`, `event_type`, "
                                       "`timestamp_unixtime_ms`, `mpid` (a string), `environment`, `input_id`, "
                                       "`user_identities`, `user_attributes`, `data` (the event's canonical data, "
                                       "mParticle's shape), `context` (the whole context of its batch, shaped as "
                                       "the admin API's event `context`: `ip`, `device_info`, `application_info`, "
                                       "`page`, `campaign`, `library`, `referrer`, `locale`, `timezone`, "
                                       "`os_name`, `location`, `traits`, `data_plan`), and `system_notifications` "
                                       "when the event's batch changed the profile's consent"),
        ("every event (batch: true)", '`{"batch": [<the same objects>]}`, up to 100 per request'),
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
                       "Idempotency-Key": idempotency_key([events[i].source_message_id for i in group]),
                       "X-Kaon-Timestamp": timestamp}
            if settings.signing_secret:
                signed = timestamp.encode() + b"." + body
                headers["X-Kaon-Signature"] = hmac.new(settings.signing_secret.encode(), signed,
                                                       hashlib.sha256).hexdigest()
            requests.append(HttpRequest("POST", settings.base_url, headers, body, tuple(group)))
        return requests


destination = Webhook()
