"""Google Analytics 4: events through the Measurement Protocol (`POST /mp/collect`)."""

import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec

from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import HttpResponse, Outcome, SendPolicy, SendResult, classify_http
from kaon.destinations.useragent import parse
from kaon.model.events import CommerceEventData, CustomEventData, Product, ScreenViewData, UserAttributeChangeData
from kaon.model.revenue import revenue_of

_encoder = msgspec.json.Encoder()

MAX_EVENTS = 25
MAX_BYTES = 130_000
MAX_PARAMS = 25
MAX_USER_PROPERTIES = 25
RESERVED_NAMES = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward", "adunit_exposure",
    "app_background", "app_clear_data", "app_exception", "app_remove", "app_store_refund",
    "app_store_subscription_cancel", "app_store_subscription_convert", "app_store_subscription_renew",
    "app_update", "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update", "dynamic_link_first_open",
    "error", "first_open", "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground",
    "notification_open", "notification_receive", "os_update", "screen_view", "session_start",
    "session_start_with_rollout", "user_engagement"})
RESERVED_PREFIXES = ("firebase_", "google_", "ga_")
# Recommended e-commerce events for mParticle product actions.
ACTION_NAMES = {"purchase": "purchase", "refund": "refund", "add_to_cart": "add_to_cart",
                "remove_from_cart": "remove_from_cart", "checkout": "begin_checkout", "view_detail": "view_item",
                "click": "select_item", "add_to_wishlist": "add_to_wishlist", "checkout_option": "add_shipping_info"}
# Reserved user attributes that are not personal data (Google forbids sending PII).
USER_PROPERTIES = {"$gender": "gender", "$age": "age", "$country": "country", "$city": "city", "$state": "state"}
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")


class Ga4Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    measurement_id: Annotated[str, msgspec.Meta(
        title="Measurement id", description="The web data stream's measurement id (Admin → Data streams).",
        examples=["G-XXXXXXXXXX"], min_length=1)]
    api_secret: Annotated[Secret, msgspec.Meta(
        title="API secret", description="A Measurement Protocol API secret of the data stream.")]
    base_url: Annotated[str, msgspec.Meta(
        title="Endpoint host", description="https://www.google-analytics.com, or "
                                           "https://region1.google-analytics.com to collect in the EU.",
        pattern=r"^https?://")] = "https://www.google-analytics.com"
    client_id_identity: Annotated[str, msgspec.Meta(
        title="Client id identity", description="User identity used as `client_id` (e.g. `other` holding the "
                                                "gtag client id); the mpid when absent or `mpid`.")] = "mpid"
    send_user_id: Annotated[bool, msgspec.Meta(
        title="Send user id", description="Send the customer id as `user_id`.")] = True
    send_user_properties: Annotated[bool, msgspec.Meta(
        title="Send user properties", description="Send non-reserved user attributes (and gender, age, country, "
                                                  "city, state) as `user_properties`; names, e-mail, phone and "
                                                  "address never leave (Google's PII policy).")] = True
    validate: Annotated[bool, msgspec.Meta(
        title="Validate only", description="Post to `/debug/mp/collect`: GA4 checks the events and answers with "
                                           "`validationMessages`, but records nothing. For setting up.")] = False


def event_name(raw: str) -> str | None:
    """GA4's rules: letters, digits and underscores, starting with a letter, ≤ 40 characters, not reserved."""
    name = _NOT_NAME.sub("_", raw.strip()).strip("_").lower()
    name = re.sub(r"^[^a-z]+", "", name)[:40]
    if not name or name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
        return None
    return name


def _params(attributes: dict[str, Any], standard: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in standard.items() if v is not None}
    for key, value in attributes.items():
        name = event_name(key)
        if name and name not in params and len(params) < MAX_PARAMS and isinstance(value, str | int | float):
            params[name] = value[:100] if isinstance(value, str) else value
    return params


def _item(index: int, product: Product) -> dict[str, Any]:
    found = (("item_id", product.id), ("item_name", product.name), ("item_brand", product.brand),
             ("item_category", product.category), ("item_variant", product.variant), ("price", product.price),
             ("quantity", None if product.quantity is None else int(product.quantity)),
             ("coupon", product.coupon_code), ("index", product.position if product.position is not None else index))
    return {k: v for k, v in found if v is not None}


def _web_params(item: DeliveryEvent) -> dict[str, Any]:
    """The page (`page_location`, `page_referrer`, `page_title`) and campaign (`campaign_id`, `campaign`,
    `source`, `medium`, `term`, `content`: the `campaign_details` names) as event parameters."""
    out: dict[str, Any] = {}
    if (page := item.page) is not None:
        out.update(page_location=page.url, page_referrer=page.referrer, page_title=page.title)
    if (campaign := item.campaign) is not None:
        out.update(campaign_id=(campaign.other or {}).get("id"), campaign=campaign.name, source=campaign.source,
                   medium=campaign.medium, term=campaign.term, content=campaign.content)
    return {k: v[:100] if isinstance(v, str) else v for k, v in out.items() if v}


def _money(item: DeliveryEvent) -> dict[str, Any]:
    """`value` and `currency` (US dollars unless sent: Segment's rule; GA4 needs a currency with a value)."""
    found = revenue_of(item.event)
    if found is None or found.value is None:
        return {}
    return {"value": found.value, "currency": found.currency_or_default}


def ga4_event(item: DeliveryEvent) -> dict[str, Any] | None:
    """`{name, params}` for one canonical event (None when GA4 cannot take it as an event)."""
    data = item.event.data
    standard: dict[str, Any] = {"session_id": data.session_id, **_web_params(item)}
    if isinstance(data, CustomEventData):
        name = event_name(data.event_name)
        return None if name is None else {"name": name, "params": _params(item.attributes(), {
            **standard, **_money(item)})}
    if isinstance(data, ScreenViewData):
        # `screen_view` is reserved for the Measurement Protocol: a screen is a page view titled by its name
        # (a page's own title wins).
        return {"name": "page_view", "params": _params(item.attributes(), {
            "page_title": data.screen_name, **standard, "screen_name": data.screen_name})}
    if isinstance(data, CommerceEventData) and data.product_action is not None:
        action = data.product_action
        name = ACTION_NAMES.get(action.action)
        if name is None:
            return None
        products = action.products or []
        standard.update({"currency": data.currency_code, **_money(item), "transaction_id": action.transaction_id,
                         "tax": action.tax_amount, "shipping": action.shipping_amount, "coupon": action.coupon_code,
                         "affiliation": action.affiliation})
        params = _params(item.attributes(), standard)
        params["items"] = [_item(n, p) for n, p in enumerate(products) if p.id or p.name]
        return {"name": name, "params": params}
    return None


def request_context(item: DeliveryEvent) -> dict[str, Any]:
    """`ip_override`, `device` and `user_location` for a request (from its first event: one user's)."""
    out: dict[str, Any] = {}
    if item.ip:
        out["ip_override"] = item.ip
    agent, device = parse(item.user_agent), item.device_info
    os_name = (item.context.os_name if item.context is not None else None) or agent.os
    found: dict[str, Any] = {"category": agent.category, "language": item.locale, "operating_system": os_name,
                             "browser": agent.browser, "browser_version": agent.browser_version}
    if device is not None:
        if device.screen_width and device.screen_height:
            found["screen_resolution"] = f"{device.screen_width}x{device.screen_height}"
        found.update(operating_system_version=device.os_version or agent.os_version, model=device.device_model,
                     brand=device.brand or device.device_manufacturer)
    elif agent.os_version:
        found["operating_system_version"] = agent.os_version
    if device_fields := {k: v for k, v in found.items() if v}:
        out["device"] = device_fields
    place = item.context.location if item.context is not None else None
    if place is not None:
        region = f"{place.country_code}-{place.region_code}" if place.country_code and place.region_code else None
        where = {k: v for k, v in (("city", place.city_name), ("country_id", place.country_code),
                                   ("region_id", region)) if v}
        if where:
            out["user_location"] = where
    return out


def _client_id(item: DeliveryEvent, settings: Ga4Settings) -> str | None:
    chosen = item.identity(settings.client_id_identity) if settings.client_id_identity != "mpid" else None
    return chosen or (None if item.mpid is None else str(item.mpid))


def user_properties(item: DeliveryEvent) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in item.user_attributes.items():
        name = USER_PROPERTIES.get(key.lower()) if key.startswith("$") else event_name(key)
        if name and len(out) < MAX_USER_PROPERTIES and isinstance(value, str | int | float):
            out[name[:24]] = {"value": value[:36] if isinstance(value, str) else value}
    return out


class Ga4(Destination):
    name = "ga4"
    title = "Google Analytics 4"
    category = "Analytics"
    description = "Web and app analytics: events and e-commerce through the GA4 Measurement Protocol."
    settings_type = Ga4Settings
    policy = SendPolicy(batch_size=100, max_concurrency=4, max_request_bytes=MAX_BYTES)
    docs_notes = (
        "`POST {base_url}/mp/collect?measurement_id=…&api_secret=…` (`/debug/mp/collect` with `validate`), "
        '`Content-Type: application/json`; body `{"client_id", "user_id"?, "timestamp_micros", '
        '"user_properties"?, "events": [{"name", "params"}]}`. One request holds one user\'s consecutive events: '
        "≤ 25 events and 130 kB. Event and parameter names are sanitised (letters, digits, underscores, start with "
        "a letter, ≤ 40 characters); reserved names and `firebase_`/`google_`/`ga_` prefixes are skipped; ≤ 25 "
        "params per event, string values ≤ 100 characters. **GA4 answers 2xx even for invalid events** (and "
        "drops events backdated more than 72 h): a 2xx is only 'received'. Use `validate` to see "
        "`validationMessages` (then any message → abort). 429 and 5xx → retry; other 4xx → abort.")
    mapping_notes = (
        ("custom event", "event named by the sanitised event name (`Clicked Button` → `clicked_button`), "
                         "attributes as params; `value` (its `revenue`, else Segment's `value`) and `currency` "
                         "(USD unless sent: Segment's rule)"),
        ("screen view", "`page_view` with `page_title` (the page's title, else the screen name) and `screen_name` "
                        "(`screen_view` is reserved for the Measurement Protocol)"),
        ("commerce", "recommended events: `purchase`, `refund`, `add_to_cart`, `remove_from_cart`, "
                     "`begin_checkout`, `view_item`, `select_item`, `add_to_wishlist`, `add_shipping_info` with "
                     "`transaction_id`, `value` (an order's `revenue` when sent, else its total, else the items' "
                     "sum), `currency`, `tax`, `shipping`, `coupon`, `items[]` (`item_id`, "
                     "`item_name`, `item_brand`, `item_category`, `item_variant`, `price`, `quantity`, `index`)"),
        ("user attribute change", "no event: carried as `user_properties` on the same user's request when the "
                                  "batch has one (every request sends the profile's current properties), "
                                  "otherwise skipped"),
        ("identity", "`client_id` from the `client_id_identity` setting, else the mpid; `user_id` = customer_id"),
        ("context", "every event: `page_location`, `page_referrer`, `page_title` from the page and `campaign_id`, "
                    "`campaign`, `source`, `medium`, `term`, `content` from the campaign (the `campaign_details` "
                    "names) as params; every request (from its first event): `ip_override`, `device` {`category`, "
                    "`language`, `operating_system`, `operating_system_version`, `browser`, `browser_version` (from "
                    "the user agent), `screen_resolution`, `model`, `brand`} and `user_location` {`city`, "
                    "`country_id`, `region_id`}"),
        ("other event types", "skipped"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, Ga4Settings)
        path = "/debug/mp/collect" if settings.validate else "/mp/collect"
        query = urlencode({"measurement_id": settings.measurement_id, "api_secret": settings.api_secret})
        url = f"{settings.base_url.rstrip('/')}{path}?{query}"
        requests: list[HttpRequest] = []
        group: list[tuple[int, dict[str, Any] | None]] = []
        key: tuple[str | None, str | None] | None = None

        def flush() -> None:
            sent = [(i, e) for i, e in group if e is not None]
            if not sent or key is None:
                return
            first, last = events[sent[0][0]], events[group[-1][0]]
            body: dict[str, Any] = {"client_id": key[0]}
            if key[1]:
                body["user_id"] = key[1]
            body["timestamp_micros"] = first.timestamp_ms * 1000
            body.update(request_context(first))
            if settings.send_user_properties and (props := user_properties(last)):
                body["user_properties"] = props
            body["events"] = [e for _, e in sent]
            requests.append(HttpRequest("POST", url, {"Content-Type": "application/json"}, _encoder.encode(body),
                                        tuple(i for i, _ in group)))

        size = 0
        for index, item in enumerate(events):
            client_id = _client_id(item, settings)
            if client_id is None:
                continue
            found = ga4_event(item)
            if found is None and not isinstance(item.event.data, UserAttributeChangeData):
                continue
            if found is not None:
                # Per-event time, so one request can carry a user's events from different moments.
                found["timestamp_micros"] = item.timestamp_ms * 1000
            this = (client_id, item.identity("customer_id") if settings.send_user_id else None)
            added = len(_encoder.encode(found)) + 1 if found is not None else 0
            count = sum(1 for _, e in group if e is not None) + (found is not None)
            if this != key or count > MAX_EVENTS or size + added > MAX_BYTES - 4_000:
                flush()
                group, key, size = [], this, 0
            group.append((index, found))
            size += added
        flush()
        return requests

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        # The collect endpoint answers 2xx whatever the payload: only the debug endpoint says what is wrong.
        if 200 <= response.status < 300 and "/debug/mp/collect" in request.url:
            try:
                answer = msgspec.json.decode(response.body)
            except msgspec.DecodeError:
                answer = {}
            messages = answer.get("validationMessages") if isinstance(answer, dict) else None
            text = response.body[:2000].decode("utf-8", "replace")
            if messages:
                return SendResult(Outcome.ABORT, f"GA4 validation: {messages}"[:500], response.status,
                                  failed_indices=request.event_indices, response_body=text)
            return SendResult(Outcome.DELIVERED, "validated (debug endpoint records nothing)", response.status,
                              response_body=text)
        return classify_http(response)


destination = Ga4()
