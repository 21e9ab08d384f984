"""Mixpanel: events through `/import` (Basic auth, strict validation), profile updates through `/engage`."""

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import HttpResponse, Outcome, SendPolicy, SendResult, classify_http
from kaon.destinations.useragent import parse
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, UserAttributeChangeData
from kaon.model.revenue import revenue_of

_encoder = msgspec.json.Encoder()

MAX_RECORDS = 2000
MAX_IMPORT_BYTES = 10_000_000  # uncompressed, per request
MAX_RECORD_BYTES = 1_000_000
_INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")

# mParticle reserved user attributes as Mixpanel's reserved profile properties.
RESERVED = {"$firstname": "$first_name", "$lastname": "$last_name", "$city": "$city", "$state": "$region",
            "$country": "$country_code", "$mobile": "$phone", "$zip": "zip", "$gender": "gender", "$age": "age",
            "$address": "address"}
ACTION_NAMES = {"purchase": "Order Completed", "refund": "Order Refunded", "add_to_cart": "Product Added",
                "remove_from_cart": "Product Removed", "checkout": "Checkout Started", "view_detail": "Product Viewed",
                "click": "Product Clicked", "add_to_wishlist": "Product Added to Wishlist",
                "remove_from_wishlist": "Product Removed from Wishlist", "checkout_option": "Checkout Option"}


class MixpanelSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_token: Annotated[Secret, msgspec.Meta(
        title="Project token", description="Sent as `$token` in profile updates, and as the Basic-auth user of "
                                           "`/import` when no API secret or service account is set.")]
    base_url: Annotated[str, msgspec.Meta(
        title="Endpoint host", description="https://api.mixpanel.com; https://api-eu.mixpanel.com (EU residency) "
                                           "or https://api-in.mixpanel.com (India).",
        examples=["https://api.mixpanel.com", "https://api-eu.mixpanel.com"], pattern=r"^https?://")] = (
        "https://api.mixpanel.com")
    project_id: Annotated[str | None, msgspec.Meta(
        title="Project id", description="Required with a service account (sent as the `project_id` query).")] = None
    service_account_username: Annotated[str | None, msgspec.Meta(
        title="Service account user", description="Service account for `/import` (recommended).")] = None
    service_account_secret: Annotated[Secret | None, msgspec.Meta(
        title="Service account secret", description="Secret of the service account.")] = None
    api_secret: Annotated[Secret | None, msgspec.Meta(
        title="API secret (legacy)", description="Project API secret for `/import` Basic auth, instead of a "
                                                 "service account.")] = None
    screen_event_name: Annotated[str, msgspec.Meta(
        title="Screen event name", description="Event name for screen views; `{name}` is the screen name.")] = (
        "Viewed {name} Screen")


def _auth(settings: MixpanelSettings) -> tuple[str, dict[str, str]]:
    """(Authorization header, query) for `/import`."""
    params = {"strict": "1"}
    if settings.service_account_username and settings.service_account_secret:
        user = f"{settings.service_account_username}:{settings.service_account_secret}"
        if settings.project_id:
            params["project_id"] = settings.project_id
    else:
        user = f"{settings.api_secret or settings.project_token}:"
    return "Basic " + base64.b64encode(user.encode()).decode(), params


def _distinct_id(item: DeliveryEvent) -> tuple[str | None, str | None]:
    """(distinct_id, device id): the customer id when known, else the mpid."""
    device = None if item.mpid is None else str(item.mpid)
    return item.identity("customer_id") or device, device


def _insert_id(item: DeliveryEvent) -> str:
    raw = item.source_message_id
    return raw if _INSERT_ID.match(raw) else hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest()


def _commerce_properties(data: CommerceEventData) -> tuple[str, dict[str, Any]] | None:
    action = data.product_action
    if action is None:
        return None
    out: dict[str, Any] = {k: v for k, v in (
        ("order_id", action.transaction_id), ("tax", action.tax_amount), ("shipping", action.shipping_amount),
        ("coupon", action.coupon_code), ("affiliation", action.affiliation), ("currency", data.currency_code))
        if v is not None}
    out["products"] = [{k: v for k, v in (("product_id", p.id), ("name", p.name), ("category", p.category),
                                          ("brand", p.brand), ("price", p.price), ("quantity", p.quantity))
                        if v is not None} for p in action.products or []]
    return ACTION_NAMES.get(action.action, data.event_name or f"Product {action.action}"), out


def web_properties(item: DeliveryEvent) -> dict[str, Any]:
    """Mixpanel's default properties for what the browser and SDK said: page, referrer, UTM, library, browser,
    operating system and screen."""
    out: dict[str, Any] = {}
    if (page := item.page) is not None:
        if page.url:
            out["$current_url"] = page.url
        if page.referrer:
            out["$referrer"] = page.referrer
            if host := urlsplit(page.referrer).hostname:
                out["$referring_domain"] = host
    if item.campaign is not None:
        out.update(item.campaign.utm())
    library = item.context.library if item.context is not None else None
    if library is not None and library.name:
        out["mp_lib"] = library.name
        if library.version:
            out["$lib_version"] = library.version
    agent = parse(item.user_agent)
    device = item.device_info
    platform = (device.platform if device is not None else None) or ""
    os_name = (item.context.os_name if item.context is not None else None) or agent.os
    if os_name is None and platform.lower() != "web":  # "web" is where, not which system
        os_name = platform or None
    os_version = (device.os_version if device is not None else None) or agent.os_version
    for key, value in (("$browser", agent.browser), ("$browser_version", agent.browser_version),
                       ("$os", os_name), ("$os_version", os_version),
                       ("$screen_width", device.screen_width if device is not None else None),
                       ("$screen_height", device.screen_height if device is not None else None)):
        if value:
            out[key] = value
    return out


def import_record(item: DeliveryEvent, settings: MixpanelSettings) -> dict[str, Any] | None:
    """The `/import` record for one canonical event (None when it is not an event in Mixpanel)."""
    data = item.event.data
    properties: dict[str, Any]
    if isinstance(data, CustomEventData):
        name, properties = data.event_name, {}
    elif isinstance(data, ScreenViewData):
        name, properties = settings.screen_event_name.replace("{name}", data.screen_name), {}
    elif isinstance(data, CommerceEventData) and (found := _commerce_properties(data)) is not None:
        name, properties = found
    else:
        return None
    distinct_id, device_id = _distinct_id(item)
    if distinct_id is None:
        return None
    properties.update(item.attributes())
    money = revenue_of(item.event)  # a purchase's or refund's, or a track call's `revenue`
    if money is not None and money.revenue is not None:
        # A number (attributes may hold text), negative for a refund: Mixpanel sums it as revenue.
        properties["revenue"] = -money.revenue if money.refund else money.revenue
    for key, value in web_properties(item).items():
        properties.setdefault(key, value)  # the event's own properties win
    properties.update({"time": item.timestamp_ms, "distinct_id": distinct_id, "$insert_id": _insert_id(item)})
    if user_id := item.identity("customer_id"):
        properties["$user_id"] = user_id
    if device_id:
        properties["$device_id"] = device_id
    if item.ip:
        properties["ip"] = item.ip
    if (device := item.device_info) is not None:
        for key, value in (("$model", device.device_model), ("$manufacturer", device.device_manufacturer),
                           ("$carrier", device.network_carrier)):
            if value:
                properties[key] = value
    if item.application_info is not None and item.application_info.application_version:
        properties["$app_version_string"] = item.application_info.application_version
    return {"event": name, "properties": properties}


def engage_record(item: DeliveryEvent, settings: MixpanelSettings) -> dict[str, Any] | None:
    """The `/engage` profile update for a user attribute change."""
    data = item.event.data
    distinct_id, _ = _distinct_id(item)
    if not isinstance(data, UserAttributeChangeData) or distinct_id is None:
        return None
    name = RESERVED.get(data.user_attribute_name.lower(), data.user_attribute_name)
    record: dict[str, Any] = {"$token": settings.project_token, "$distinct_id": distinct_id,
                              "$time": item.timestamp_ms,
                              # Without $ip Mixpanel geolocates the profile to the sender: us.
                              "$ip": item.ip or "0"}
    if data.deleted:
        record["$unset"] = [name]
    else:
        record["$set"] = {name: data.new}
    return record


class Mixpanel(Destination):
    name = "mixpanel"
    title = "Mixpanel"
    category = "Analytics"
    description = "Product analytics: events through Mixpanel's `/import` API and user profiles through `/engage`."
    settings_type = MixpanelSettings
    policy = SendPolicy(batch_size=MAX_RECORDS, max_concurrency=4, max_request_bytes=MAX_IMPORT_BYTES)
    docs_notes = (
        "Events: `POST {base_url}/import?strict=1` (`&project_id=` with a service account), "
        "`Authorization: Basic` with the service account, the API secret, or the project token as user and an "
        "empty password; body a JSON array of `{event, properties: {time (ms), distinct_id, $insert_id, ...}}`, "
        "≤ 2,000 records and 10 MB per request, ≤ 1 MB per record (larger events are skipped). Profiles: "
        "`POST {base_url}/engage?verbose=1`, JSON array of `{$token, $distinct_id, $time, $ip, $set|$unset}`. "
        "Responses: `/import` 400 with `failed_records` → abort of those records only (the others were "
        "imported: `failed_indices` names them); 413 → retry; 429 → retry with backoff (Mixpanel sends no "
        "Retry-After); 5xx → retry. `/engage` answers 200 with `status: 0` when validation fails → abort.")
    mapping_notes = (
        ("custom event", "`/import` event named as the event, attributes as properties; `revenue` (Segment's "
                         "reserved property) as a number, with `currency`"),
        ("screen view", "`/import` event `Viewed <screen> Screen` (setting `screen_event_name`)"),
        ("commerce: purchase / refund", "`Order Completed` / `Order Refunded` with `revenue` (the order's "
                                        "`revenue` when sent, else its total; negative for refunds), `order_id`, "
                                        "`currency`, `products[]`"),
        ("commerce: other product actions", "Segment-spec names (`Product Added`, `Checkout Started`, ...)"),
        ("user attribute change", "`/engage` `$set` (or `$unset` when deleted); reserved attributes become "
                                  "`$first_name`, `$last_name`, `$city`, `$region`, `$country_code`, `$phone`"),
        ("identity", "`distinct_id` = customer_id, else mpid; `$user_id` and `$device_id` (mpid) for ID merge; "
                     "`$insert_id` = source message id (md5 when not a valid insert id)"),
        ("context (every event)", "`ip`; `$current_url`, `$referrer`, `$referring_domain` from the page; "
                                  "`utm_source`, `utm_medium`, `utm_campaign`, `utm_term`, `utm_content` from the "
                                  "campaign; `mp_lib`, `$lib_version` from the library; `$browser`, "
                                  "`$browser_version` from the user agent; `$os` (the os name, else from the user "
                                  "agent, else a non-web platform), `$os_version`, `$screen_width`, `$screen_height`, "
                                  "`$model`, `$manufacturer`, `$carrier`, `$app_version_string`; the event's own "
                                  "properties win"),
        ("other event types", "skipped"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, MixpanelSettings)
        base = settings.base_url.rstrip("/")
        authorization, params = _auth(settings)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        kinds: dict[str, list[tuple[int, bytes]]] = {"import": [], "engage": []}
        for index, item in enumerate(events):
            record = import_record(item, settings)
            kind = "import"
            if record is None:
                record, kind = engage_record(item, settings), "engage"
            if record is not None and len(encoded := _encoder.encode(record)) <= MAX_RECORD_BYTES:
                kinds[kind].append((index, encoded))
        requests = []
        for kind, records in kinds.items():
            url = f"{base}/import?{query}" if kind == "import" else f"{base}/engage?verbose=1"
            headers = {"Content-Type": "application/json"}
            if kind == "import":
                headers["Authorization"] = authorization
            for chunk in _chunks(records):
                body = b"[" + b",".join(e for _, e in chunk) + b"]"
                requests.append(HttpRequest("POST", url, headers, body, tuple(i for i, _ in chunk), {"kind": kind}))
        return requests

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        text = response.body[:2000].decode("utf-8", "replace")
        try:
            answer = msgspec.json.decode(response.body) if response.body else None
        except msgspec.DecodeError:
            answer = None
        if request.extra.get("kind") == "engage" and response.status == 200 and isinstance(answer, dict) \
                and answer.get("status") == 0:
            return SendResult(Outcome.ABORT, f"profile update refused: {answer.get('error')}", 200,
                              failed_indices=request.event_indices, response_body=text)
        if response.status == 400 and isinstance(answer, dict) and answer.get("failed_records"):
            positions = request.event_indices
            failed = tuple(sorted({positions[r["index"]] for r in answer["failed_records"]
                                   if isinstance(r, dict) and isinstance(r.get("index"), int)
                                   and 0 <= r["index"] < len(positions)}))
            imported = answer.get("num_records_imported", len(positions) - len(failed))
            return SendResult(Outcome.ABORT, f"{len(failed)} records failed validation, {imported} imported", 400,
                              failed_indices=failed or positions, response_body=text)
        if response.status == 413:
            return SendResult(Outcome.RETRY, "payload too large: resend in smaller requests", 413, response_body=text)
        return classify_http(response)


def _chunks(records: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
    chunks: list[list[tuple[int, bytes]]] = []
    size = 0
    for record in records:
        if not chunks or len(chunks[-1]) >= MAX_RECORDS or size + len(record[1]) + 1 > MAX_IMPORT_BYTES - 2:
            chunks.append([])
            size = 0
        chunks[-1].append(record)
        size += len(record[1]) + 1
    return chunks


destination = Mixpanel()
