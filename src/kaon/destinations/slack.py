"""Slack incoming webhook: one message per event, rendered from a text template with named placeholders."""

import fnmatch
import re
from collections.abc import Sequence
from typing import Annotated, Any, Final

import msgspec

from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import HttpResponse, Outcome, SendPolicy, SendResult, classify_http
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, UserAttributeChangeData

PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[^{}\s]+)?)\}")
MAX_TEXT: Final = 3000  # Slack truncates longer messages; keep a message readable

Emoji = Annotated[str, msgspec.Meta(pattern=r"^:[^:\s]+:$")]

_encoder = msgspec.json.Encoder()


class SlackSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[Secret, msgspec.Meta(
        title="Webhook URL", description="The incoming webhook URL Slack gave you (it is the secret).",
        examples=["https://hooks.slack.com/services/T000/B000/XXXX"], pattern=r"^https?://")]
    template: Annotated[str, msgspec.Meta(
        title="Message template",
        description="The message text. Placeholders: `{event_name}`, `{event_type}`, `{mpid}`, `{customer_id}`, "
                    "`{email}`, `{environment}`, `{attributes}` (all event attributes), `{attributes.KEY}` "
                    "(one event attribute), `{user.KEY}` (one user attribute). Unknown placeholders are left "
                    "as they are.", min_length=1)] = \
        "*{event_name}* ({event_type}) by {customer_id} (mpid {mpid}): {attributes}"
    events: Annotated[list[str], msgspec.Meta(
        title="Events to send", description="Event names (or event types) to send; `*` and `?` match any "
                                            "text. Empty: every event. Other events are skipped.",
        examples=[["Order Completed", "Signed Up", "purchase"]])] = []
    channel: Annotated[str | None, msgspec.Meta(
        title="Channel", description="Overrides the webhook's channel (legacy webhooks only).")] = None
    username: Annotated[str | None, msgspec.Meta(
        title="User name", description="Overrides the poster's name (legacy webhooks only).")] = None
    icon_emoji: Annotated[Emoji | None, msgspec.Meta(
        title="Icon emoji", description="Overrides the poster's icon, e.g. `:bell:` (legacy webhooks only).")] = None


def event_name(item: DeliveryEvent) -> str:
    data = item.event.data
    if isinstance(data, CustomEventData):
        return data.event_name
    if isinstance(data, ScreenViewData):
        return data.screen_name
    if isinstance(data, CommerceEventData) and data.product_action is not None:
        return data.product_action.action
    if isinstance(data, UserAttributeChangeData):
        return data.user_attribute_name
    return item.event_type


def escape(value: str) -> str:
    """Slack's three control characters, so event data cannot inject links or mentions."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _encoder.encode(value).decode()


def event_attributes(item: DeliveryEvent) -> dict[str, Any]:
    data = item.event.data
    if isinstance(data, UserAttributeChangeData):
        return {"new": data.new, "old": data.old, "deleted": bool(data.deleted)}
    if isinstance(data, CommerceEventData) and data.product_action is not None:
        action = data.product_action
        found = {"transaction_id": action.transaction_id, "total": action.total_amount,
                 "currency": data.currency_code, "products": len(action.products or [])}
        return {**item.attributes(), **{k: v for k, v in found.items() if v is not None}}
    return item.attributes()


def render(template: str, item: DeliveryEvent) -> str:
    """Replace known placeholders with escaped values; anything else stays as written (no code runs)."""
    attributes = event_attributes(item)
    values = {"event_name": event_name(item), "event_type": item.event_type,
              "mpid": "" if item.mpid is None else str(item.mpid), "customer_id": item.identity("customer_id"),
              "email": item.identity("email"), "environment": item.environment, "attributes": attributes}

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        head, _, rest = key.partition(".")
        if not rest and head in values:
            return escape(text(values[head]))
        if rest and head == "attributes" and rest in attributes:
            return escape(text(attributes[rest]))
        if rest and head == "user" and rest in item.user_attributes:
            return escape(text(item.user_attributes[rest]))
        return match.group(0)

    return PLACEHOLDER.sub(one, template)[:MAX_TEXT]


class Slack(Destination):
    name = "slack"
    title = "Slack"
    category = "Notifications"
    description = "Posts a message to a Slack channel (incoming webhook) for selected events."
    settings_type = SlackSettings
    # Slack allows about one message per second per webhook (short bursts tolerated).
    policy = SendPolicy(batch_size=1, max_concurrency=1, rate_limit_rps=1.0, timeout_s=10.0)
    docs_notes = (
        "`POST` JSON `{\"text\": …}` to the incoming-webhook URL (the URL is the secret), one message per event, "
        "at most about one per second. Slack answers `200 ok`; 429 is retried after `Retry-After`, 5xx are "
        "retried, and other errors (`invalid_payload`, `no_service`, `channel_not_found`, "
        "`channel_is_archived`, `action_prohibited`, …) abort.")
    mapping_notes = (
        ("any event on the allow-list", "one message `{\"text\": template}`; matched on the event name (custom "
                                        "event name, screen name, product action such as `purchase`, changed "
                                        "attribute's name) or the event type; `*`/`?` wildcards"),
        ("other events", "skipped"),
        ("placeholders", "values escaped (`&`, `<`, `>`) so event data cannot add links or mentions; unknown "
                         "placeholders stay as written; `channel`, `username`, `icon_emoji` sent when set"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, SlackSettings)
        requests = []
        for i, item in enumerate(events):
            if settings.events and not any(fnmatch.fnmatchcase(candidate, pattern)
                                           for pattern in settings.events
                                           for candidate in (event_name(item), item.event_type)):
                continue
            body: dict[str, str] = {"text": render(settings.template, item)}
            for field in ("channel", "username", "icon_emoji"):
                if value := getattr(settings, field):
                    body[field] = value
            requests.append(HttpRequest("POST", settings.base_url, {"Content-Type": "application/json"},
                                        _encoder.encode(body), (i,)))
        return requests

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        result = classify_http(response)
        if result.outcome is Outcome.ABORT:
            code = result.response_body.strip()[:100] or f"HTTP {response.status}"
            return SendResult(Outcome.ABORT, f"Slack refused the message: {code}", response.status,
                              response_body=result.response_body)
        return result


destination = Slack()
