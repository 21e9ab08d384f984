"""Amplitude: HTTP API v2 (`/2/httpapi`) or Batch Event Upload (`/batch`), api_key in the body."""

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import HttpResponse, Outcome, SendPolicy, SendResult, classify_http, retry_after
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, UserAttributeChangeData
from kaon.model.revenue import Revenue, revenue_of

_encoder = msgspec.json.Encoder()

MAX_EVENTS = 2000  # per request, both endpoints
MAX_BYTES = {"httpapi": 1_000_000, "batch": 20_000_000}
PATHS = {"httpapi": "/2/httpapi", "batch": "/batch"}
THROTTLE_PAUSE_S = 30.0  # Amplitude's advice for a throttled user or device

# mParticle reserved user attributes under the names people use in Amplitude.
RESERVED = {"$firstname": "first_name", "$lastname": "last_name", "$city": "city", "$state": "state",
            "$country": "country", "$zip": "zip", "$gender": "gender", "$age": "age", "$mobile": "mobile",
            "$address": "address"}
# mParticle product actions as Segment-spec event names (what Amplitude charts and templates expect).
ACTION_NAMES = {"purchase": "Order Completed", "refund": "Order Refunded", "add_to_cart": "Product Added",
                "remove_from_cart": "Product Removed", "checkout": "Checkout Started", "view_detail": "Product Viewed",
                "click": "Product Clicked", "add_to_wishlist": "Product Added to Wishlist",
                "remove_from_wishlist": "Product Removed from Wishlist", "checkout_option": "Checkout Option"}
# mParticle's platform names as Amplitude spells them.
PLATFORMS = {"web": "Web", "ios": "iOS", "android": "Android"}
# Revenue attributes Amplitude takes at the top of an event (they move out of `event_properties`).
REVENUE_ATTRIBUTES = ("revenue", "price", "quantity", "productId", "product_id", "revenueType", "revenue_type")


class AmplitudeSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    api_key: Annotated[Secret, msgspec.Meta(
        title="API key", description="The project's API key (Settings → Projects); sent as `api_key` in the body.")]
    secret_key: Annotated[Secret | None, msgspec.Meta(
        title="Secret key", description="The project's secret key (Settings → Projects). Optional: only data "
        "subject request erasures use it, to call Amplitude's User Privacy API (`POST /api/2/deletions/users`, "
        "Basic api_key:secret_key); without it the erasure is not forwarded to Amplitude.")] = None
    base_url: Annotated[str, msgspec.Meta(
        title="Endpoint host", description="Amplitude host; use https://api.eu.amplitude.com for EU residency.",
        examples=["https://api2.amplitude.com", "https://api.eu.amplitude.com"], pattern=r"^https?://")] = (
        "https://api2.amplitude.com")
    endpoint: Annotated[Literal["httpapi", "batch"], msgspec.Meta(
        title="API", description="`httpapi` (HTTP API v2, ≤ 1 MB per request, 30 events/s per user) or `batch` "
                                 "(Batch Event Upload, ≤ 20 MB, 1,000 events/s per user; for backfills).")] = "httpapi"
    screen_event_name: Annotated[str, msgspec.Meta(
        title="Screen event name", description="Event type for screen views; `{name}` is the screen name.")] = (
        "Viewed {name} Screen")
    track_revenue_per_product: Annotated[bool, msgspec.Meta(
        title="Revenue per product", description="Purchases also send one `Product Purchased` event per product "
        "carrying `price`, `quantity`, `productId`, `revenueType`; the order event then carries no revenue.")] = False
    min_id_length: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, msgspec.Meta(
        title="Minimum id length", description="`options.min_id_length`: accept user and device ids shorter "
                                               "than Amplitude's default of 5 characters.")] = None


def _device_id(item: DeliveryEvent) -> str | None:
    device = item.device_info
    if device is not None:
        for value in (device.amp_id, device.ios_idfv, device.android_uuid):
            if value:
                return value
    return None if item.mpid is None else str(item.mpid)


def _context(item: DeliveryEvent) -> dict[str, Any]:
    """The fields Amplitude keeps per event: identity, time, dedup key, device, app and location."""
    out: dict[str, Any] = {"time": item.timestamp_ms, "insert_id": item.source_message_id}
    if user_id := item.identity("customer_id"):
        out["user_id"] = user_id
    if device_id := _device_id(item):
        out["device_id"] = device_id
    if item.ip:
        out["ip"] = item.ip
    context = item.context
    if (device := item.device_info) is not None:
        platform = PLATFORMS.get((device.platform or "").lower(), device.platform)
        os_name = (context.os_name if context is not None else None) or platform
        for key, value in (("platform", platform), ("os_name", os_name),
                           ("os_version", device.os_version), ("device_model", device.device_model),
                           ("device_manufacturer", device.device_manufacturer), ("device_brand", device.brand),
                           ("carrier", device.network_carrier),
                           ("idfa", device.ios_advertising_id), ("idfv", device.ios_idfv),
                           ("adid", device.android_advertising_id), ("android_id", device.android_uuid)):
            if value:
                out[key] = value
    if language := item.locale:
        out["language"] = language
    if item.application_info is not None and item.application_info.application_version:
        out["app_version"] = item.application_info.application_version
    place = context.location if context is not None else None
    if place is not None:
        # Sent, they replace what Amplitude would look up from the ip.
        for key, value in (("country", place.country_code), ("region", place.region_code),
                           ("city", place.city_name)):
            if value:
                out[key] = value
    location = item.event.data.location or place
    if location is not None and location.latitude is not None and location.longitude is not None:
        out["location_lat"], out["location_lng"] = location.latitude, location.longitude
    return out


def _properties(item: DeliveryEvent, properties: dict[str, Any]) -> dict[str, Any]:
    """Event properties plus the campaign (`utm_*`) and the page's referrer: Amplitude has no fields for them.
    The event's own properties win."""
    web: dict[str, Any] = item.campaign.utm() if item.campaign is not None else {}
    if item.page is not None and item.page.referrer:
        web["referrer"] = item.page.referrer
    return {**web, **properties}


def _revenue_fields(found: Revenue | None, properties: dict[str, Any]) -> dict[str, Any]:
    """Amplitude's revenue fields (`revenue`, `price`, `quantity`, `productId`, `revenueType`, `currency`),
    moved out of `properties`; none unless the event made money (a `price` alone would count as revenue)."""
    if found is None or found.revenue is None:
        return {}
    for key in REVENUE_ATTRIBUTES:
        properties.pop(key, None)
    sign = -1 if found.refund else 1
    fields: dict[str, Any] = {"revenue": sign * found.revenue,
                              "revenueType": found.revenue_type or ("Refund" if found.refund else "Purchased")}
    if found.price is not None:
        fields["price"] = sign * found.price
    if found.quantity is not None:
        fields["quantity"] = int(found.quantity)
    if found.product_id:
        fields["productId"] = found.product_id
    if found.currency:
        fields["currency"] = found.currency
    return fields


def _commerce(item: DeliveryEvent, data: CommerceEventData, settings: AmplitudeSettings) -> list[dict[str, Any]]:
    action = data.product_action
    if action is None:
        return []
    products = action.products or []
    properties: dict[str, Any] = {
        k: v for k, v in (("order_id", action.transaction_id), ("tax", action.tax_amount),
                          ("shipping", action.shipping_amount), ("coupon", action.coupon_code),
                          ("affiliation", action.affiliation), ("currency", data.currency_code)) if v is not None}
    properties["products"] = [
        {k: v for k, v in (("product_id", p.id), ("name", p.name), ("category", p.category), ("brand", p.brand),
                           ("variant", p.variant), ("price", p.price), ("quantity", p.quantity)) if v is not None}
        for p in products]
    properties.update(item.attributes())
    name = ACTION_NAMES.get(action.action, data.event_name or f"Product {action.action}")
    if action.action not in ("purchase", "refund"):
        return [{**_context(item), "event_type": name, "event_properties": _properties(item, properties)}]
    sign = -1 if action.action == "refund" else 1
    revenue_type = "Purchased" if sign == 1 else "Refund"
    if not settings.track_revenue_per_product:
        fields = _revenue_fields(revenue_of(item.event), properties)
        return [{**_context(item), "event_type": name, "event_properties": _properties(item, properties), **fields}]
    for key in REVENUE_ATTRIBUTES:  # the products carry the revenue
        properties.pop(key, None)
    out = [{**_context(item), "event_type": name, "event_properties": _properties(item, properties)}]
    for n, product in enumerate(products):
        each = {**_context(item), "event_type": "Product Purchased" if sign == 1 else "Product Refunded",
                "insert_id": f"{item.source_message_id}-{n}", "revenueType": revenue_type,
                "price": sign * (product.price or 0.0), "quantity": int(product.quantity or 1),
                "event_properties": properties["products"][n]}
        if product.id:
            each["productId"] = product.id
        if data.currency_code:
            each["currency"] = data.currency_code
        out.append(each)
    return out


def _user_property(name: str) -> str:
    return RESERVED.get(name.lower(), name)


def amplitude_events(item: DeliveryEvent, settings: AmplitudeSettings) -> list[dict[str, Any]]:
    """The Amplitude events for one canonical event ([] when it has no Amplitude equivalent)."""
    data = item.event.data
    if isinstance(data, CustomEventData):
        properties = item.attributes()
        fields = _revenue_fields(revenue_of(item.event), properties)
        return [{**_context(item), "event_type": data.event_name, "event_properties": _properties(item, properties),
                 **fields}]
    if isinstance(data, ScreenViewData):
        return [{**_context(item), "event_type": settings.screen_event_name.replace("{name}", data.screen_name),
                 "event_properties": _properties(item, item.attributes())}]
    if isinstance(data, CommerceEventData):
        return _commerce(item, data, settings)
    if isinstance(data, UserAttributeChangeData):
        name = _user_property(data.user_attribute_name)
        operation = {"$unset": {name: "-"}} if data.deleted else {"$set": {name: data.new}}
        return [{**_context(item), "event_type": "$identify", "user_properties": operation}]
    return []


class Amplitude(Destination):
    name = "amplitude"
    title = "Amplitude"
    category = "Analytics"
    description = "Product analytics: events, revenue and user properties through Amplitude's HTTP API v2."
    settings_type = AmplitudeSettings
    policy = SendPolicy(batch_size=MAX_EVENTS, max_concurrency=4, rate_limit_rps=100.0,
                        max_request_bytes=MAX_BYTES["httpapi"])
    docs_notes = (
        "`POST {base_url}/2/httpapi` (or `/batch`), `Content-Type: application/json`, body "
        '`{"api_key", "events": [...], "options"?}`; no auth header. Up to 2,000 events and 1 MB per request '
        "(20 MB on `/batch`), split by count and size. `insert_id` (the source message id) makes retries safe "
        "(deduplicated for 7 days). Responses: 400 listing `events_with_invalid_fields` / "
        "`events_with_missing_fields` / `silenced_events` → retry_part of the other events (abort if none are "
        "valid); 413 → retry (requests are already split below the limit); 429 → retry after `Retry-After` or "
        "30 s; 5xx → retry.")
    mapping_notes = (
        ("custom event", "event with `event_type` = event name, `event_properties` = attributes; a `revenue` "
                         "attribute (Segment's reserved property) moves to the top with `price`, `quantity`, "
                         "`productId`, `revenueType` (default `Purchased`) and `currency`; `value` or `price` alone "
                         "are not revenue and stay properties"),
        ("screen view", "event `Viewed <screen> Screen` (setting `screen_event_name`)"),
        ("commerce: purchase / refund", "`Order Completed` / `Order Refunded` with `revenue` (the order's `revenue` "
                                        "when sent, else its total; negative for refunds),"
                                        " `revenueType`, products in `event_properties`; per-product "
                                        "`Product Purchased` events with `price`, `quantity`, `productId` when "
                                        "`track_revenue_per_product`"),
        ("commerce: other product actions", "Segment-spec names (`Product Added`, `Checkout Started`, ...)"),
        ("user attribute change", "`$identify` with `user_properties` `$set` (or `$unset` when deleted); "
                                  "reserved `$firstname` etc. become `first_name`, ..."),
        ("identity", "`user_id` = customer_id; `device_id` = Amplitude device id, IDFV, Android id, else mpid"),
        ("context (every event)", "`ip`, `platform` (`Web`, `iOS`, `Android`), `os_name` (the os name, else the "
                                  "platform), `os_version`, `device_model`, `device_manufacturer`, `carrier`, "
                                  "`language` (the locale as sent, `de-DE`), `app_version`, `country`/`region`/`city` "
                                  "and `location_lat`/`_lng` from the batch's location; Amplitude has no campaign or "
                                  "page fields, so `utm_source`, `utm_medium`, `utm_campaign`, `utm_term`, "
                                  "`utm_content` (and other campaign keys as `utm_<key>`) and the page's `referrer` "
                                  "are event properties (the event's own properties win)"),
        ("other event types", "skipped"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, AmplitudeSettings)
        url = settings.base_url.rstrip("/") + PATHS[settings.endpoint]
        envelope: dict[str, Any] = {"api_key": settings.api_key}
        if settings.min_id_length is not None:
            envelope["options"] = {"min_id_length": settings.min_id_length}
        limit = MAX_BYTES[settings.endpoint] - len(_encoder.encode({**envelope, "events": []}))
        requests: list[HttpRequest] = []
        chunk: list[bytes] = []
        owners: list[int] = []  # which canonical event each Amplitude event in the chunk came from
        size = 0

        def flush() -> None:
            if chunk:
                head = _encoder.encode(envelope)[:-1] + b',"events":['
                body = head + b",".join(chunk) + b"]}"
                requests.append(HttpRequest("POST", url, {"Content-Type": "application/json"}, body,
                                            tuple(dict.fromkeys(owners)), {"positions": tuple(owners)}))

        for index, item in enumerate(events):
            encoded = [_encoder.encode(e) for e in amplitude_events(item, settings)
                       if "user_id" in e or "device_id" in e]
            if not encoded:
                continue
            extra = sum(len(e) + 1 for e in encoded)
            if chunk and (len(chunk) + len(encoded) > MAX_EVENTS or size + extra > limit):
                flush()
                chunk, owners, size = [], [], 0
            chunk.extend(encoded)
            owners.extend([index] * len(encoded))
            size += extra
        flush()
        return requests

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        text = response.body[:2000].decode("utf-8", "replace")
        if response.status == 429:
            wait = retry_after(response.headers)
            return SendResult(Outcome.RETRY, "throttled users or devices", 429,
                              THROTTLE_PAUSE_S if wait is None else wait, response_body=text)
        if response.status == 413:
            return SendResult(Outcome.RETRY, "payload too large: resend in smaller requests", 413, response_body=text)
        if response.status == 400:
            return _invalid_events(request, response, text)
        return classify_http(response)


def _invalid_events(request: HttpRequest, response: HttpResponse, text: str) -> SendResult:
    """Amplitude rejects the whole request but names the invalid events: drop those, resend the rest."""
    try:
        answer = msgspec.json.decode(response.body)
    except msgspec.DecodeError:
        answer = None
    positions: tuple[int, ...] = request.extra.get("positions", request.event_indices)
    bad: set[int] = set()
    if isinstance(answer, dict):
        for key in ("events_with_invalid_fields", "events_with_missing_fields"):
            for listed in (answer.get(key) or {}).values():
                bad.update(p for p in listed if isinstance(p, int))
        bad.update(p for p in answer.get("silenced_events") or () if isinstance(p, int))
    failed = tuple(dict.fromkeys(positions[p] for p in sorted(bad) if 0 <= p < len(positions)))
    if not failed:
        return SendResult(Outcome.ABORT, f"HTTP 400: {text[:300]}", 400, response_body=text)
    retry = tuple(i for i in request.event_indices if i not in failed)
    if not retry:
        return SendResult(Outcome.ABORT, "every event was invalid", 400, failed_indices=failed, response_body=text)
    return SendResult(Outcome.RETRY_PART, f"{len(failed)} invalid events dropped", 400,
                      retry_indices=retry, failed_indices=failed, response_body=text)


destination = Amplitude()
