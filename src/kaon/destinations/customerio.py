"""Customer.io Journeys Track API (v1): people via `PUT /customers/{id}`, events via `/customers/{id}/events`."""

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import msgspec

from kaon.activation.membership import ADD, membership_of
from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import SendPolicy
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, UserAttributeChangeData
from kaon.model.revenue import revenue_of
from kaon.model.segment_commerce import PRODUCT_ACTIONS

US_HOST: Final = "https://track.customer.io"
EU_HOST: Final = "https://track-eu.customer.io"
# mParticle product actions → Segment e-commerce spec event names (Customer.io has no commerce endpoint).
COMMERCE_NAMES: Final = {action: " ".join(w if w in ("to", "from") else w.capitalize() for w in name.split())
                         for name, action in reversed(PRODUCT_ACTIONS.items())}
# mParticle reserved user attributes → Customer.io's conventional attribute names.
RESERVED: Final = {"$firstname": "first_name", "$lastname": "last_name", "$mobile": "phone", "$city": "city",
                   "$country": "country", "$zip": "zip", "$state": "state", "$gender": "gender", "$age": "age",
                   "$address": "address"}
CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_encoder = msgspec.json.Encoder()


class CustomerIoSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    site_id: Annotated[str, msgspec.Meta(
        title="Site ID", description="The workspace's Track API site ID (the Basic auth user name).",
        min_length=1)]
    api_key: Annotated[Secret, msgspec.Meta(
        title="Track API key", description="The workspace's Track API key (the Basic auth password).",
        min_length=1)]
    region: Annotated[Literal["us", "eu"], msgspec.Meta(
        title="Region", description="The account's data centre; `eu` sends to track-eu.customer.io unless "
                                    "the URL is changed.")] = "us"
    base_url: Annotated[str, msgspec.Meta(
        title="Track API URL", description="The Track API host (the region's host by default).",
        pattern=r"^https?://")] = US_HOST
    send_anonymous: Annotated[bool, msgspec.Meta(
        title="Send anonymous events", description="Events of users without a customer ID go to `/api/v1/events` "
                                                   "with the mpid as `anonymous_id`; off: they are skipped.")] = True


class CustomerIoAudience(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An audience connection's settings (`settings.output`)."""

    segment_id: Annotated[int, msgspec.Meta(
        title="Manual segment ID", description="The Customer.io manual segment the audience's members are added "
                                               "to and removed from (create it in Customer.io first).", ge=1)]


MAX_SEGMENT_IDS: Final = 1000  # ids per add_customers / remove_customers request (Customer.io's limit)


def ulid(timestamp_ms: int, seed: str) -> str:
    """A ULID made from the event time and a hash of its message id: Customer.io's dedup `id` must be a ULID,
    and the same event must always get the same one."""
    entropy = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10])
    value = ((timestamp_ms & (2**48 - 1)) << 80) | entropy
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def seconds(value: Any) -> int | None:
    """A Unix time in seconds from seconds, milliseconds or an ISO-8601 string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value / 1000) if value > 100_000_000_000 else int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


def person(item: DeliveryEvent) -> dict[str, Any]:
    """The profile as Customer.io attributes: user attributes (reserved ones renamed), email, created_at."""
    body: dict[str, Any] = {RESERVED.get(k, k): v for k, v in item.user_attributes.items()}
    data = item.event.data
    if isinstance(data, UserAttributeChangeData) and data.deleted:
        # Customer.io removes an attribute sent as an empty string.
        body[RESERVED.get(data.user_attribute_name, data.user_attribute_name)] = ""
    if email := item.identity("email"):
        body["email"] = email
    created = body.pop("createdAt", None) if "created_at" not in body else body.get("created_at")
    if (created_s := seconds(created)) is not None:
        body["created_at"] = created_s
    else:
        body.pop("created_at", None)
    return body


def commerce_data(item: DeliveryEvent, data: CommerceEventData) -> dict[str, Any]:
    action = data.product_action
    out: dict[str, Any] = dict(data.custom_attributes or {})
    money = revenue_of(item.event)
    if action is not None:
        out.update({k: v for k, v in (("order_id", action.transaction_id), ("total", action.total_amount),
                                      ("revenue", money.revenue if money is not None else None),
                                      ("tax", action.tax_amount),
                                      ("shipping", action.shipping_amount), ("coupon", action.coupon_code),
                                      ("affiliation", action.affiliation)) if v is not None})
        out["products"] = [{k: v for k, v in (("product_id", p.id), ("sku", p.id), ("name", p.name),
                                              ("price", p.price), ("quantity", p.quantity), ("category", p.category),
                                              ("brand", p.brand), ("variant", p.variant)) if v is not None}
                           for p in action.products or []]
    if data.currency_code:
        out["currency"] = data.currency_code
    return out


class CustomerIo(Destination):
    name = "customerio"
    title = "Customer.io"
    category = "Marketing automation"
    description = "Updates people and tracks their events in Customer.io Journeys through the Track API."
    settings_type = CustomerIoSettings
    # Track API: about 3,000 requests per 3 s per workspace; one event per request (segment changes: up to 1,000).
    # A claim of 100 keeps a backlog of single-event requests well inside a claim's time; segment requests carry up
    # to 100 ids (Customer.io takes 1,000).
    policy = SendPolicy(batch_size=100, max_concurrency=8, rate_limit_rps=1000.0)
    audience = True
    identity_types = ("customer_id", "email")
    connection_settings_type = CustomerIoAudience
    docs_notes = (
        "Track API v1 at `https://track.customer.io` (EU: `https://track-eu.customer.io`), HTTP Basic auth "
        "`site_id:api_key`, one request per event. 429 and 5xx are retried (honouring `Retry-After`); 400, "
        "401 and 403 abort.")
    mapping_notes = (
        ("attribute / identity change", "`PUT /api/v1/customers/{customer_id}` with the user's attributes "
                                        "(`$firstname` → `first_name`, `$lastname` → `last_name`, `$mobile` → "
                                        "`phone`, …), `email`, and `created_at` (s) from a `created_at`/"
                                        "`createdAt` attribute; a deleted attribute is sent as `\"\"` (removes it); "
                                        "skipped without a customer ID"),
        ("custom event", "`POST /api/v1/customers/{customer_id}/events` `{name, type: \"event\", data, "
                         "timestamp (s), id}`"),
        ("screen view", "the same with `type: \"screen\"` and `name` = screen name; from web `type: \"page\"` named "
                        "by the page's URL (its `url` property, else the page the call came from: Customer.io "
                        "segments page views by URL), the screen name as `data.name`"),
        ("commerce", "an event named per the Segment spec (`Order Completed`, `Product Added`, …) with "
                     "`order_id`, `total`, `revenue` (the order's `revenue` when sent, else its total), `tax`, "
                     "`shipping`, `currency`, `products[]` in `data`"),
        ("anonymous user", "events go to `POST /api/v1/events` with the mpid as `anonymous_id`"),
        ("every event", "`id` is a ULID derived from the event time and message id, so a retry is deduplicated"),
        ("audience member added / removed (sync)", "`POST /api/v1/segments/{segment_id}/add_customers` (or "
                                                  "`remove_customers`) `{ids: [...]}`, up to 100 per request, "
                                                  "by customer ID (`id_type=id`), else by e-mail "
                                                  "(`id_type=email`); `segment_id` is the connection's "
                                                  "`settings.output.segment_id`, a manual segment"),
        ("audience trigger", "the `audience_membership_change` custom event, as any custom event"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, CustomerIoSettings)
        base = settings.base_url.rstrip("/")
        if settings.region == "eu" and base == US_HOST:
            base = EU_HOST
        auth = "Basic " + base64.b64encode(f"{settings.site_id}:{settings.api_key}".encode()).decode()
        headers = {"Content-Type": "application/json", "Authorization": auth}
        requests = []
        runs: list[tuple[str, list[int], list[str]]] = []  # (path, event positions, ids): consecutive, in order
        for i, item in enumerate(events):
            change = membership_of(item)
            if change is not None:
                segment = change.settings.get("segment_id")
                key, id_type = ((change.identities.get("customer_id"), "id") if change.identities.get("customer_id")
                                else (change.identities.get("email"), "email"))
                if not isinstance(segment, int) or not key:
                    continue  # no segment, or nothing Customer.io can name the person by: skipped
                verb = "add_customers" if change.action == ADD else "remove_customers"
                path = f"/api/v1/segments/{segment}/{verb}?id_type={id_type}"
                if not runs or runs[-1][0] != path or len(runs[-1][1]) >= MAX_SEGMENT_IDS:
                    runs.append((path, [], []))
                runs[-1][1].append(i)
                runs[-1][2].append(key)
                continue
            found = self.request(item, settings, base)
            if found is not None:
                method, path, body = found
                requests.append(HttpRequest(method, base + path, dict(headers), _encoder.encode(body), (i,)))
        requests.extend(HttpRequest("POST", base + path, dict(headers), _encoder.encode({"ids": ids}), tuple(where))
                        for path, where, ids in runs)
        return sorted(requests, key=lambda r: r.event_indices[0])

    def request(self, item: DeliveryEvent, settings: CustomerIoSettings,
                base: str) -> tuple[str, str, dict[str, Any]] | None:
        customer = item.identity("customer_id")
        data = item.event.data
        if isinstance(data, UserAttributeChangeData) or item.event_type == "user_identity_change":
            return ("PUT", f"/api/v1/customers/{quote(customer, safe='')}", person(item)) if customer else None
        event = self.event(item)
        if event is None:
            return None
        if customer:
            return "POST", f"/api/v1/customers/{quote(customer, safe='')}/events", event
        if settings.send_anonymous and item.mpid is not None:
            return "POST", "/api/v1/events", {**event, "anonymous_id": str(item.mpid)}
        return None

    @staticmethod
    def event(item: DeliveryEvent) -> dict[str, Any] | None:
        data = item.event.data
        if isinstance(data, CustomEventData):
            name, kind, fields = data.event_name, "event", item.attributes()
        elif isinstance(data, ScreenViewData):
            web = item.device_info is not None and (item.device_info.platform or "").lower() == "web"
            name, kind, fields = data.screen_name, "page" if web else "screen", item.attributes()
            url = fields.get("url") if isinstance(fields.get("url"), str) else item.page.url if item.page else None
            if web and url:
                # Customer.io segments page views by the URL visited: a page event is named by its URL.
                name = url
                fields.setdefault("name", data.screen_name)
        elif isinstance(data, CommerceEventData) and data.product_action is not None:
            found = COMMERCE_NAMES.get(data.product_action.action)
            if found is None:
                return None
            name, kind, fields = found, "event", commerce_data(item, data)
        else:
            return None
        return {"name": name, "type": kind, "data": fields, "timestamp": item.timestamp_ms // 1000,
                "id": ulid(item.timestamp_ms, item.source_message_id)}


destination = CustomerIo()
