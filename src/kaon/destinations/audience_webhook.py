"""Audience membership webhook: mParticle's partner-facing `audience_membership_change_request` (Firehose shape).

For teams with their own services: each request carries up to 100 membership changes as `user_profiles`, each
with the profile's identities (typed as the Firehose SDK names them, raw or hashed) and one `audiences[]` entry
with `action` `add` or `delete`. Signed like the webhook output (X-Kaon-Timestamp, X-Kaon-Signature).
"""

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

import msgspec

from kaon.activation.membership import membership_of
from kaon.destinations.base import Destination, HttpRequest
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import SendPolicy
from kaon.destinations.webhook import ExtraHeaders, SigningSecret, idempotency_key

_encoder = msgspec.json.Encoder()
FIREHOSE_VERSION: Final = "2.8.1"
MAX_PROFILES: Final = 100
# Kaon's canonical identity types → the Firehose SDK's UserIdentity.Type / DeviceIdentity.Type names.
USER_TYPES: Final = {"customer_id": "customer", "email": "email", "other": "other", "facebook": "facebook",
                     "twitter": "twitter", "google": "google", "microsoft": "microsoft", "yahoo": "yahoo",
                     "other_id_2": "other2", "other_id_3": "other3", "other_id_4": "other4",
                     "mobile_number": "mobile_number"}
DEVICE_TYPES: Final = {"ios_advertising_id": "ios_advertising_id", "ios_idfv": "ios_vendor_id",
                       "android_advertising_id": "google_advertising_id", "android_uuid": "android_id",
                       "roku_advertising_id": "roku_advertising_id", "roku_publisher_id": "roku_publisher_id",
                       "fire_advertising_id": "fire_advertising_id",
                       "microsoft_advertising_id": "microsoft_advertising_id",
                       "microsoft_publisher_id": "microsoft_publisher_id"}
NAMESPACE: Final = uuid.UUID("6f1c8a52-6c1e-4d57-9a07-3b0b8f1f6a11")


class AudienceWebhookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[str, msgspec.Meta(
        title="URL", description="Where to POST the membership change requests.",
        examples=["https://example.com/hooks/audiences"], pattern=r"^https?://")]
    encoding: Annotated[Literal["raw", "sha256", "md5"], msgspec.Meta(
        title="Identity encoding", description="Send user identities as they are (`raw`) or hashed (device "
                                               "identities are always raw, as mParticle sends them).")] = "raw"
    account_id: Annotated[int, msgspec.Meta(
        title="Account id", description="The `account.account_id` the requests carry.", ge=0)] = 0
    signing_secret: SigningSecret = None
    headers: ExtraHeaders = {}


def _encoded(value: str, encoding: str) -> str:
    if encoding == "sha256":
        return hashlib.sha256(value.strip().lower().encode()).hexdigest()
    if encoding == "md5":
        return hashlib.md5(value.strip().lower().encode(), usedforsecurity=False).hexdigest()
    return value


class AudienceWebhook(Destination):
    name = "audience_webhook"
    title = "Audience membership webhook"
    category = "Audiences"
    description = ("mParticle's `audience_membership_change_request`: each member added to or removed from a "
                   "connected audience, with the profile's identities, POSTed to your service.")
    settings_type = AudienceWebhookSettings
    policy = SendPolicy(batch_size=MAX_PROFILES, max_concurrency=1, timeout_s=30.0)
    audience = True
    takes_events = False
    identity_types = (*USER_TYPES, *DEVICE_TYPES)

    docs_notes = (
        "An audience output: connect an audience to it (`POST /api/v1/audiences/{id}/connections`). `POST "
        "{base_url}` with `Content-Type: application/json`, your `headers`, `Idempotency-Key` (the changes' message "
        "ids, as the webhook output makes it: the same on every retry) and `X-Kaon-Timestamp` (unix seconds of the "
        "newest change). With a `signing_secret`, `X-Kaon-Signature` is the lower-case hex HMAC-SHA256 of "
        "`<X-Kaon-Timestamp>.<body>` keyed with the secret. Responses: 2xx → delivered; 408, 429 and 5xx → retried "
        "with backoff, honouring `Retry-After`; any other 4xx → aborted (dead-lettered, replayable).")
    mapping_notes = (
        ("membership change", "`{type: audience_membership_change_request, id, timestamp_ms, firehose_version, "
                              "account: {account_id, account_settings}, user_profiles: [...]}`, up to 100 per "
                              "request, in change order"),
        ("member", "`{mpid (a string), user_identities: [{type, encoding, value}], device_identities: [...], "
                   "audiences: [{audience_id, audience_name, action: add | delete}]}`; identity types as "
                   "mParticle names them (`customer`, `email`, `other2`, `ios_advertising_id`, "
                   "`google_advertising_id`, `android_id`, ...)"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, AudienceWebhookSettings)
        profiles: list[dict[str, Any]] = []
        indices: list[int] = []
        for index, item in enumerate(events):
            change = membership_of(item)
            if change is None:
                continue
            profiles.append({
                "mpid": str(change.mpid),
                "user_identities": [{"type": USER_TYPES[k], "encoding": settings.encoding,
                                     "value": _encoded(v, settings.encoding)}
                                    for k, v in change.identities.items() if k in USER_TYPES],
                "device_identities": [{"type": DEVICE_TYPES[k], "encoding": "raw", "value": v}
                                      for k, v in change.identities.items() if k in DEVICE_TYPES],
                "audiences": [{"audience_id": change.audience_id, "audience_name": change.audience_name,
                               "action": change.action}],
            })
            indices.append(index)
        if not profiles:
            return []
        ids = [events[i].source_message_id for i in indices]
        body = _encoder.encode({
            "type": "audience_membership_change_request",
            "id": str(uuid.uuid5(NAMESPACE, ",".join(ids))),
            "timestamp_ms": max(events[i].timestamp_ms for i in indices),
            "firehose_version": FIREHOSE_VERSION,
            "account": {"account_id": settings.account_id, "account_settings": {}},
            "user_profiles": profiles,
        })
        stamp = str(max(events[i].timestamp_ms for i in indices) // 1000)
        headers = {"Content-Type": "application/json", **settings.headers, "Idempotency-Key": idempotency_key(ids),
                   "X-Kaon-Timestamp": stamp}
        if settings.signing_secret:
            headers["X-Kaon-Signature"] = hmac.new(settings.signing_secret.encode(), stamp.encode() + b"." + body,
                                                   hashlib.sha256).hexdigest()
        return [HttpRequest("POST", settings.base_url, headers, body, tuple(indices))]


destination = AudienceWebhook()
