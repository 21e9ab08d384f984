"""Meta Conversions API: events with hashed `user_data` to `POST /{version}/{pixel}/events` on the Graph API."""

import hashlib
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import msgspec

from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.graph_api import GRAPH_HOST, GRAPH_VERSION, GraphUrl, GraphVersion, classify_graph
from kaon.destinations.outcome import HttpResponse, SendPolicy, SendResult
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData
from kaon.model.revenue import revenue_of

MAX_EVENTS: Final = 1000
MAX_AGE_S: Final = 7 * 24 * 3600
MAX_AHEAD_S: Final = 60
# mParticle product actions → Meta standard events; refunds and removals have no Meta event and are skipped.
PRODUCT_ACTIONS: Final = {
    "purchase": "Purchase", "add_to_cart": "AddToCart", "view_detail": "ViewContent",
    "checkout": "InitiateCheckout", "checkout_option": "AddPaymentInfo", "add_to_wishlist": "AddToWishlist",
}
# Segment-spec events that reach us as custom events but have a Meta standard event.
STANDARD_NAMES: Final = {"products searched": "Search", "payment info entered": "AddPaymentInfo"}
APP_PLATFORMS: Final = frozenset({"ios", "android", "tvos", "roku", "xbox", "alexa", "smarttv", "firetv"})
ActionSource = Literal["auto", "website", "app", "email", "phone_call", "chat", "physical_store",
                       "system_generated", "business_messaging", "other"]

_encoder = msgspec.json.Encoder()


class MetaCapiSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pixel_id: Annotated[str, msgspec.Meta(
        title="Pixel (dataset) ID", description="The Meta pixel or dataset the events belong to.",
        examples=["1234567890"], pattern=r"^\d+$")]
    access_token: Annotated[Secret, msgspec.Meta(
        title="Access token", description="A Conversions API system-user access token (sent as `access_token`).")]
    base_url: GraphUrl = GRAPH_HOST
    api_version: GraphVersion = GRAPH_VERSION
    action_source: Annotated[ActionSource, msgspec.Meta(
        title="Action source", description="Where the conversions happened; `auto` sends `app` for events "
                                           "from mobile and TV platforms and `website` otherwise.")] = "auto"
    screen_event: Annotated[Literal["PageView", "ViewContent"], msgspec.Meta(
        title="Screen / page event", description="The Meta event a screen or page view becomes.")] = "PageView"
    event_names: Annotated[dict[str, str], msgspec.Meta(
        title="Event name mapping", description="Custom event name → Meta event name (e.g. `Signed Up` → "
                                                "`CompleteRegistration`); unmapped names are sent as they are.",
        examples=[{"Signed Up": "CompleteRegistration"}])] = {}
    default_currency: Annotated[str, msgspec.Meta(
        title="Default currency", description="ISO 4217 code for commerce events that carry none.",
        pattern=r"^[A-Z]{3}$")] = "USD"
    test_event_code: Annotated[str | None, msgspec.Meta(
        title="Test event code", description="Routes the events to Events Manager's Test Events tab.")] = None


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _letters(value: str) -> str:
    return "".join(c for c in value if c.isalpha())


def _name(value: str) -> str:
    """Names: lowercase, no punctuation (UTF-8 letters kept)."""
    return "".join(c for c in value.strip().lower() if not unicodedata.category(c).startswith(("P", "S")))


def _phone(value: str) -> str:
    return re.sub(r"\D", "", value).lstrip("0")


def _zip(value: str) -> str:
    return value.strip().lower().replace(" ", "").split("-")[0]


def _gender(value: str) -> str:
    first = value.strip().lower()[:1]
    return first if first in ("f", "m") else ""


def _country(value: str) -> str:
    letters = _letters(value.strip().lower())
    return letters if len(letters) == 2 else ""


# Meta's normalisation per customer-information parameter, applied before hashing.
NORMALISE: Final[dict[str, Callable[[str], str]]] = {
    "em": lambda v: v.strip().lower(), "ph": _phone, "fn": _name, "ln": _name, "ge": _gender,
    "ct": lambda v: _letters(v.lower()), "st": lambda v: _letters(v.lower()), "zp": _zip, "country": _country,
    "external_id": str.strip,
}
# (user_data key, mParticle reserved user attribute) pairs.
ATTRIBUTES: Final = (("fn", "$firstname"), ("ln", "$lastname"), ("ge", "$gender"), ("ct", "$city"),
                     ("st", "$state"), ("zp", "$zip"), ("country", "$country"), ("ph", "$mobile"))


def user_data(item: DeliveryEvent) -> dict[str, str]:
    """Hashed identifiers (normalised first); IP address and user agent as they are."""
    raw: dict[str, str] = {}
    for key, identity in (("em", "email"), ("ph", "mobile_number"), ("external_id", "customer_id")):
        if found := item.identity(identity):
            raw[key] = found
    if "external_id" not in raw and item.mpid is not None:
        raw["external_id"] = str(item.mpid)
    for key, attribute in ATTRIBUTES:
        value = item.user_attributes.get(attribute)
        if key not in raw and isinstance(value, str | int) and not isinstance(value, bool):
            raw[key] = str(value)
    data = {key: sha256(normal) for key, value in raw.items() if (normal := NORMALISE[key](value))}
    if item.ip:
        data["client_ip_address"] = item.ip
    if agent := item.user_agent:
        data["client_user_agent"] = agent
    flags = item.event.data.custom_flags or {}
    # The mParticle web SDK's captured click and browser ids; else the click id in the page's URL, formatted
    # as Meta documents (fb.<subdomain index>.<creation time, ms>.<fbclid>; the event's time stands in).
    if isinstance(fbc := flags.get("Facebook.ClickId"), str) and fbc:
        data["fbc"] = fbc
    elif (clicked := _fbclid(item)) is not None:
        data["fbc"] = f"fb.1.{item.timestamp_ms}.{clicked}"
    if isinstance(fbp := flags.get("Facebook.BrowserId"), str) and fbp:
        data["fbp"] = fbp
    return data


def _fbclid(item: DeliveryEvent) -> str | None:
    url = item.page.url if item.page is not None else None
    found = parse_qs(urlsplit(url).query).get("fbclid") if url else None
    return found[0] if found else None


def money(item: DeliveryEvent, default_currency: str) -> dict[str, Any]:
    """`value` and `currency` of an event that carries money (revenue, else Segment's `value`, else totals)."""
    found = revenue_of(item.event)
    if found is None or found.value is None:
        return {}
    return {"value": found.value, "currency": found.currency or default_currency}


def commerce_data(item: DeliveryEvent, data: CommerceEventData, default_currency: str) -> dict[str, Any]:
    action = data.product_action
    products = (action.products if action else None) or []
    contents = [{k: v for k, v in (("id", p.id), ("quantity", int(p.quantity or 1)), ("item_price", p.price))
                 if v is not None} for p in products if p.id]
    value = money(item, default_currency).get("value", 0.0)
    custom: dict[str, Any] = {**(data.custom_attributes or {}),
                              "currency": data.currency_code or default_currency, "value": value,
                              "content_type": "product", "contents": contents,
                              "content_ids": [c["id"] for c in contents],
                              "num_items": int(sum(p.quantity or 1 for p in products))}
    if action and action.transaction_id:
        custom["order_id"] = action.transaction_id
    return custom


class MetaCapi(Destination):
    name = "meta_capi"
    title = "Meta Conversions API"
    category = "Advertising"
    description = "Sends conversions (purchases, page views, custom events) to a Meta pixel, hashing user data."
    settings_type = MetaCapiSettings
    policy = SendPolicy(batch_size=MAX_EVENTS, max_concurrency=4, timeout_s=10.0)
    docs_notes = (
        "`POST https://graph.facebook.com/{api_version}/{pixel_id}/events?access_token=…` with a JSON body "
        "`{\"data\": [...]}` (and `test_event_code` when set), at most 1,000 events per request. Throttling "
        "comes back as Graph error codes 4/17/32/613 in a 400 body and is retried; other Graph errors "
        "(100 invalid parameter, 190 expired token, …) abort the batch, since Meta rejects a whole request "
        "for one bad event.")
    mapping_notes = (
        ("purchase", "`Purchase` with `custom_data` `value` (the order's `revenue` when sent, else its total), "
                     "`currency` (else the default currency), "
                     "`contents[{id, quantity, item_price}]`, `content_ids`, `content_type: product`, `num_items`, "
                     "`order_id`"),
        ("other commerce", "add to cart → `AddToCart`, product view → `ViewContent`, checkout → "
                           "`InitiateCheckout`, payment info → `AddPaymentInfo`, add to wishlist → `AddToWishlist`; "
                           "refunds, removals, clicks, impressions and promotions are skipped"),
        ("screen view", "`PageView` (or `ViewContent`, a setting), attributes as `custom_data`"),
        ("custom event", "its name, or the mapped name (`Products Searched` → `Search`); attributes as "
                         "`custom_data`, with `value` (its `revenue`, else Segment's `value`) and `currency` (else "
                         "the default currency) when it carries money"),
        ("attribute / identity change", "skipped: the Conversions API has no profiles"),
        ("every event", "`event_time` in seconds (events over 7 days old are skipped, since Meta rejects the whole "
                        "request for one; future times are sent as now), `event_id` = source message id (dedup "
                        "with the pixel), `action_source`, `user_data`: `em` `ph` `fn` `ln` `ge` `ct` `st` `zp` "
                        "`country` `external_id` (customer id, else mpid) normalised per Meta's rules then "
                        "SHA-256; `client_ip_address`, `client_user_agent` unhashed; `fbc`/`fbp` from the "
                        "mParticle web SDK's `Facebook.ClickId`/`Facebook.BrowserId` custom flags, else `fbc` "
                        "`fb.1.<event time ms>.<fbclid>` from the page URL's `fbclid`; `event_source_url` = a page "
                        "call's `url`, else the page the call came from (website events need it)"),
    )

    def __init__(self) -> None:
        # The only input besides the events: the 7-day window is judged against this clock (tests pin it).
        self.clock: Callable[[], float] = time.time

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, MetaCapiSettings)
        now = int(self.clock())
        mapped = [(i, data) for i, item in enumerate(events) if (data := self.event(item, settings, now))]
        url = (f"{settings.base_url.rstrip('/')}/{settings.api_version}/{quote(settings.pixel_id, safe='')}"
               f"/events?{urlencode({'access_token': settings.access_token})}")
        requests = []
        for start in range(0, len(mapped), MAX_EVENTS):
            chunk = mapped[start:start + MAX_EVENTS]
            body: dict[str, Any] = {"data": [data for _, data in chunk]}
            if settings.test_event_code:
                body["test_event_code"] = settings.test_event_code
            requests.append(HttpRequest("POST", url, {"Content-Type": "application/json"}, _encoder.encode(body),
                                        tuple(i for i, _ in chunk)))
        return requests

    def event(self, item: DeliveryEvent, settings: MetaCapiSettings, now: int) -> dict[str, Any] | None:
        """One `data[]` entry, or None for events Meta cannot take (kind, or older than 7 days)."""
        event_time = item.timestamp_ms // 1000
        if event_time < now - MAX_AGE_S:
            return None
        data = item.event.data
        custom: dict[str, Any]
        if isinstance(data, CustomEventData):
            name = settings.event_names.get(data.event_name) or \
                STANDARD_NAMES.get(data.event_name.strip().lower(), data.event_name)
            custom = {**item.attributes(), **money(item, settings.default_currency)}
        elif isinstance(data, ScreenViewData):
            name, custom = settings.screen_event, {"content_name": data.screen_name, **item.attributes()}
        elif isinstance(data, CommerceEventData) and data.product_action is not None:
            found = PRODUCT_ACTIONS.get(data.product_action.action)
            if found is None:
                return None
            name, custom = found, commerce_data(item, data, settings.default_currency)
        else:
            return None
        body: dict[str, Any] = {
            "event_name": name, "event_time": min(event_time, now), "event_id": item.source_message_id,
            "action_source": self.action_source(item, settings), "user_data": user_data(item),
        }
        page_url = item.page.url if item.page is not None else None
        for url in (custom.get("url"), page_url):  # a page call's own `url`, else the page the call came from
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                body["event_source_url"] = url
                break
        if custom:
            body["custom_data"] = custom
        return body

    @staticmethod
    def action_source(item: DeliveryEvent, settings: MetaCapiSettings) -> str:
        if settings.action_source != "auto":
            return settings.action_source
        platform = (item.device_info.platform or "") if item.device_info else ""
        return "app" if platform.lower() in APP_PLATFORMS else "website"

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        return classify_graph(response)


destination = MetaCapi()
