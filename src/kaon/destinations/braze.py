"""Braze: attributes, events and purchases through `POST /users/track` on the account's REST instance."""

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from kaon.activation.membership import ADD, membership_of
from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import HttpResponse, Outcome, SendPolicy, SendResult, classify_http, retry_after
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, UserAttributeChangeData
from kaon.model.revenue import revenue_of

_encoder = msgspec.json.Encoder()

MAX_PER_KIND = 75  # attributes, events and purchases, each, per request
KINDS = ("attributes", "events", "purchases")

# mParticle reserved user attributes as Braze standard attributes.
RESERVED = {"$firstname": "first_name", "$lastname": "last_name", "$city": "home_city", "$country": "country",
            "$gender": "gender", "$mobile": "phone", "$zip": "zip", "$age": "age", "$state": "state",
            "$address": "address"}
ACTION_NAMES = {"purchase": "Order Completed", "refund": "Order Refunded", "add_to_cart": "Product Added",
                "remove_from_cart": "Product Removed", "checkout": "Checkout Started", "view_detail": "Product Viewed",
                "click": "Product Clicked", "add_to_wishlist": "Product Added to Wishlist",
                "remove_from_wishlist": "Product Removed from Wishlist", "checkout_option": "Checkout Option"}


class BrazeSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    api_key: Annotated[Secret, msgspec.Meta(
        title="REST API key", description="A REST API key with the `users.track` permission (Bearer token).")]
    base_url: Annotated[str, msgspec.Meta(
        title="REST endpoint", description="Your instance's REST endpoint, e.g. https://rest.iad-01.braze.com "
                                           "(US-01) or https://rest.fra-01.braze.eu (EU-01).",
        examples=["https://rest.iad-01.braze.com", "https://rest.fra-01.braze.eu"], pattern=r"^https?://")] = (
        "https://rest.iad-01.braze.com")
    alias_label: Annotated[str, msgspec.Meta(
        title="Alias label", description="Users without a customer id are addressed by `user_alias` "
                                         "{alias_name: mpid, alias_label: this}.")] = "mpid"
    screen_event_name: Annotated[str, msgspec.Meta(
        title="Screen event name", description="Custom event name for screen views; `{name}` is the screen name.")] = (
        "Viewed {name} Screen")
    default_currency: Annotated[str, msgspec.Meta(
        title="Default currency", description="ISO 4217 code for purchases that carry none.",
        pattern=r"^[A-Z]{3}$")] = "USD"
    audiences_as: Annotated[Literal["array", "boolean"], msgspec.Meta(
        title="Audiences as", description="How a synced audience's members are marked: `array`, the audience id "
                                          "added to and removed from the array attribute `audience_attribute` (as "
                                          "mParticle's SegmentMembership, which holds audience ids); `boolean`, "
                                          "one attribute per audience, named after it, true or false.")] = "array"
    audience_attribute: Annotated[str, msgspec.Meta(
        title="Audience attribute", description="The array custom attribute of `audiences_as: array`.",
        min_length=1, max_length=255)] = "kaon_audiences"


def iso_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _user(item: DeliveryEvent, settings: BrazeSettings) -> dict[str, Any] | None:
    if customer_id := item.identity("customer_id"):
        return {"external_id": customer_id}
    if item.mpid is None:
        return None
    # Alias-only profiles are created only when told to.
    return {"user_alias": {"alias_name": str(item.mpid), "alias_label": settings.alias_label},
            "_update_existing_only": False}


def _commerce(item: DeliveryEvent, data: CommerceEventData, user: dict[str, Any],
              settings: BrazeSettings) -> dict[str, list[dict[str, Any]]]:
    action = data.product_action
    if action is None:
        return {}
    when = iso_time(item.timestamp_ms)
    order = {k: v for k, v in (("order_id", action.transaction_id), ("tax", action.tax_amount),
                               ("shipping", action.shipping_amount), ("coupon", action.coupon_code),
                               ("affiliation", action.affiliation)) if v is not None}
    products = [p for p in action.products or [] if p.id or p.name]
    if action.action == "purchase" and products:
        return {"purchases": [
            {**user, "product_id": p.id or p.name, "currency": data.currency_code or settings.default_currency,
             "price": p.price or 0.0, "quantity": max(1, min(100, int(p.quantity or 1))), "time": when,
             "properties": {**order, **{k: v for k, v in (("name", p.name), ("category", p.category),
                                                          ("brand", p.brand), ("variant", p.variant))
                                        if v is not None}}}
            for p in products[:MAX_PER_KIND]]}
    properties: dict[str, Any] = {**order, **item.attributes()}
    money = revenue_of(item.event)  # an order's `revenue` when sent, else its total
    if money is not None and money.revenue is not None:
        properties["revenue"] = money.revenue
    if data.currency_code:
        properties["currency"] = data.currency_code
    name = ACTION_NAMES.get(action.action, data.event_name or f"Product {action.action}")
    return {"events": [{**user, "name": name, "time": when, "properties": properties}]}


def braze_objects(item: DeliveryEvent, settings: BrazeSettings) -> dict[str, list[dict[str, Any]]]:
    """The `attributes` / `events` / `purchases` objects for one canonical event."""
    user = _user(item, settings)
    if user is None:
        return {}
    change = membership_of(item)
    if change is not None:  # an audience connection's list sync: the membership attribute
        added = change.action == ADD
        if settings.audiences_as == "boolean":
            return {"attributes": [{**user, change.audience_name: added}]}
        return {"attributes": [{**user, settings.audience_attribute: {
            "add" if added else "remove": [change.audience_id]}}]}
    data = item.event.data
    if isinstance(data, CustomEventData):
        return {"events": [{**user, "name": data.event_name, "time": iso_time(item.timestamp_ms),
                            "properties": item.attributes()}]}
    if isinstance(data, ScreenViewData):
        name = settings.screen_event_name.replace("{name}", data.screen_name)
        return {"events": [{**user, "name": name, "time": iso_time(item.timestamp_ms),
                            "properties": item.attributes()}]}
    if isinstance(data, CommerceEventData):
        return _commerce(item, data, user, settings)
    if isinstance(data, UserAttributeChangeData):
        name = RESERVED.get(data.user_attribute_name.lower(), data.user_attribute_name)
        # Braze removes an attribute set to null.
        return {"attributes": [{**user, name: None if data.deleted else data.new}]}
    return {}


class Braze(Destination):
    name = "braze"
    title = "Braze"
    category = "Engagement"
    description = "Customer engagement: user attributes, custom events and purchases through Braze `/users/track`."
    settings_type = BrazeSettings
    policy = SendPolicy(batch_size=MAX_PER_KIND, max_concurrency=8, rate_limit_rps=1000.0)
    audience = True
    identity_types = ("customer_id",)
    docs_notes = (
        "`POST {base_url}/users/track`, `Authorization: Bearer <api_key>`, `Content-Type: application/json`; body "
        '`{"attributes": [...], "events": [...], "purchases": [...]}`, at most 75 of each per request (3,000 '
        "requests per 3 s per instance). Responses: 2xx `{\"message\": \"success\", \"errors\": [...]}` means the "
        "listed objects were skipped and the rest processed → delivered, the skipped events reported as "
        "`failed_indices`; 429 → retry after `Retry-After` or `X-RateLimit-Reset`; 5xx → retry; other 4xx "
        "(fatal: bad key, malformed body) → abort.")
    mapping_notes = (
        ("custom event", "`events[]` {name, time (ISO-8601), properties = attributes}; a track call's `revenue` "
                         "stays a property (only orders are Braze purchases)"),
        ("screen view", "`events[]` named `Viewed <screen> Screen` (setting `screen_event_name`)"),
        ("commerce: purchase", "one `purchases[]` entry per product {product_id (id, else name), currency, price, "
                               "quantity (1 to 100), time, properties}; a purchase without products becomes an "
                               "`Order Completed` event with `revenue` (its `revenue` when sent, else its total)"),
        ("commerce: other actions", "`events[]` with Segment-spec names (`Order Refunded`, `Product Added`, ...)"),
        ("user attribute change", "`attributes[]` with the attribute (null when deleted); reserved attributes "
                                  "become `first_name`, `last_name`, `home_city`, `country`, `gender`, `phone`"),
        ("identity", "`external_id` = customer_id; otherwise `user_alias` {alias_name: mpid, alias_label} with "
                     "`_update_existing_only: false`"),
        ("audience member added / removed (sync)", "`attributes[]` {`audience_attribute`: {add: [audience id]}} "
                                                  "or {remove: [...]}; with `audiences_as: boolean` {<audience "
                                                  "name>: true | false}"),
        ("audience trigger", "the `audience_membership_change` custom event, as any custom event"),
        ("other event types", "skipped"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, BrazeSettings)
        url = settings.base_url.rstrip("/") + "/users/track"
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Authorization": f"Bearer {settings.api_key}"}
        requests: list[HttpRequest] = []
        body: dict[str, list[dict[str, Any]]] = {}
        owners: dict[str, list[int]] = {}

        def flush() -> None:
            if body:
                covered = sorted({i for kind in owners.values() for i in kind})
                requests.append(HttpRequest("POST", url, headers, _encoder.encode(body), tuple(covered),
                                            {"positions": {k: tuple(v) for k, v in owners.items()}}))

        for index, item in enumerate(events):
            objects = braze_objects(item, settings)
            if not objects:
                continue
            if any(len(body.get(k, ())) + len(v) > MAX_PER_KIND for k, v in objects.items()):
                flush()
                body, owners = {}, {}
            for kind, found in objects.items():
                body.setdefault(kind, []).extend(found)
                owners.setdefault(kind, []).extend([index] * len(found))
        flush()
        return requests

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        text = response.body[:2000].decode("utf-8", "replace")
        if 200 <= response.status < 300:
            failed = _errored(request, response.body)
            message = f"{len(failed)} events had objects skipped by Braze" if failed else ""
            return SendResult(Outcome.DELIVERED, message, response.status, failed_indices=failed, response_body=text)
        if response.status == 429:
            wait = retry_after(response.headers)
            reset = response.headers.get("x-ratelimit-reset")
            if wait is None and reset and reset.isdigit():
                wait = max(0.0, int(reset) - time.time())
            return SendResult(Outcome.RETRY, "rate limited", 429, wait, response_body=text)
        return classify_http(response)


def _errored(request: HttpRequest, body: bytes) -> tuple[int, ...]:
    """Events whose objects Braze listed in `errors[]` ({type, input_array, index})."""
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ()
    positions: dict[str, tuple[int, ...]] = request.extra.get("positions", {})
    failed: set[int] = set()
    for error in answer.get("errors") or () if isinstance(answer, dict) else ():
        if not isinstance(error, dict):
            continue
        owners = positions.get(str(error.get("input_array")), ())
        index = error.get("index")
        if isinstance(index, int) and 0 <= index < len(owners):
            failed.add(owners[index])
    return tuple(sorted(failed))


destination = Braze()
