"""Iterable: events via `trackBulk`, profiles via `users/bulkUpdate`, purchases via `commerce/trackPurchase`."""

from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

import msgspec

from kaon.activation.membership import ADD, membership_of
from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import HttpResponse, Outcome, SendPolicy, SendResult, classify_http
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, UserAttributeChangeData
from kaon.model.revenue import revenue_of

US_HOST: Final = "https://api.iterable.com"
EU_HOST: Final = "https://api.eu.iterable.com"
MAX_BULK_ITEMS: Final = 1000  # bulkUpdate takes about 1,000 users; trackBulk is held to the same count
MAX_BULK_BYTES: Final = 4_000_000  # both bulk endpoints: 4 MB per request
# mParticle reserved user attributes → Iterable's reserved / conventional fields.
RESERVED: Final = {"$firstname": "firstName", "$lastname": "lastName", "$mobile": "phoneNumber", "$city": "city",
                   "$country": "country", "$zip": "zip", "$state": "state", "$gender": "gender", "$age": "age",
                   "$address": "address"}
# Lists in a bulk answer (top level or under `failedUpdates`) naming users whose items were refused.
FAILED_EMAILS: Final = ("invalidEmails", "notFoundEmails", "forgottenEmails", "conflictEmails", "invalidDataEmails")
FAILED_USER_IDS: Final = ("invalidUserIds", "notFoundUserIds", "forgottenUserIds", "conflictUserIds",
                          "invalidDataUserIds")

_encoder = msgspec.json.Encoder()


class IterableSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    api_key: Annotated[Secret, msgspec.Meta(
        title="API key", description="A server-side Iterable API key (sent as the `Api-Key` header).",
        min_length=1)]
    region: Annotated[Literal["us", "eu"], msgspec.Meta(
        title="Region", description="The project's data centre; `eu` sends to api.eu.iterable.com unless the "
                                    "URL is changed.")] = "us"
    base_url: Annotated[str, msgspec.Meta(
        title="API URL", description="The Iterable API host (the region's host by default).",
        pattern=r"^https?://")] = US_HOST
    prefer_user_id: Annotated[bool, msgspec.Meta(
        title="Prefer user ID", description="Profile updates of users without an email create the user by "
                                            "`userId` (Iterable's `preferUserId`).")] = True


class IterableAudience(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An audience connection's settings (`settings.output`)."""

    list_id: Annotated[int, msgspec.Meta(
        title="List ID", description="The Iterable static list the audience's members are subscribed to and "
                                     "unsubscribed from (create it in Iterable first).", ge=1)]


def user_key(item: DeliveryEvent) -> dict[str, str]:
    """Iterable identifies a user by `email` and/or `userId` (the customer id)."""
    key = {}
    if email := item.identity("email"):
        key["email"] = email
    if user_id := item.identity("customer_id"):
        key["userId"] = user_id
    return key


def data_fields(item: DeliveryEvent) -> dict[str, Any]:
    fields: dict[str, Any] = {RESERVED.get(k, k): v for k, v in item.user_attributes.items()}
    data = item.event.data
    if isinstance(data, UserAttributeChangeData) and data.deleted:
        fields[RESERVED.get(data.user_attribute_name, data.user_attribute_name)] = None
    return fields


def purchase(item: DeliveryEvent, data: CommerceEventData, key: dict[str, str]) -> dict[str, Any]:
    action = data.product_action
    products = (action.products if action else None) or []
    items = [{k: v for k, v in (("id", p.id), ("sku", p.id), ("name", p.name or p.id), ("price", p.price or 0.0),
                                ("quantity", int(p.quantity or 1)),
                                ("categories", [p.category] if p.category else None)) if v is not None}
             for p in products if p.id]
    money = revenue_of(item.event)  # an order's `revenue` when sent, else its total
    total = money.revenue if money is not None and money.revenue is not None else \
        sum((p.price or 0.0) * int(p.quantity or 1) for p in products if p.id)
    fields: dict[str, Any] = dict(data.custom_attributes or {})
    if data.currency_code:
        fields["currency"] = data.currency_code
    if action and action.transaction_id:
        fields["order_id"] = action.transaction_id
    body: dict[str, Any] = {"id": item.source_message_id, "user": key, "items": items, "total": total,
                            "createdAt": item.timestamp_ms // 1000}
    if fields:
        body["dataFields"] = fields
    return body


def chunks(entries: list[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Split bulk entries by count and by encoded size."""
    out: list[list[tuple[int, dict[str, Any]]]] = []
    current: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for entry in entries:
        entry_size = len(_encoder.encode(entry[1])) + 1
        if current and (len(current) >= MAX_BULK_ITEMS or size + entry_size > MAX_BULK_BYTES - 64):
            out.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        out.append(current)
    return out


class Iterable(Destination):
    name = "iterable"
    title = "Iterable"
    category = "Marketing automation"
    description = "Tracks events and purchases and updates user profiles in Iterable."
    settings_type = IterableSettings
    # Bulk endpoints allow about 5 (bulkUpdate) to 10 (trackBulk) requests per second per key.
    audience = True
    identity_types = ("email", "customer_id")
    connection_settings_type = IterableAudience
    policy = SendPolicy(batch_size=MAX_BULK_ITEMS, max_concurrency=2, rate_limit_rps=5.0,
                        max_request_bytes=MAX_BULK_BYTES)
    docs_notes = (
        "`https://api.iterable.com` (EU: `https://api.eu.iterable.com`), `Api-Key` header. Bulk endpoints take "
        "up to 4 MB (and about 1,000 items) per request. A 2xx answer listing refused users (`failCount`, "
        "`invalidEmails`, `failedUpdates`, …) dead-letters just those events; 429 and 5xx are retried; "
        "400 and 401 abort.")
    mapping_notes = (
        ("custom event", "`POST /api/events/trackBulk` `{email, userId, eventName, createdAt (s), dataFields, id}`"),
        ("screen view", "the same, `eventName` = `<name> screen` (`<name> page` from web)"),
        ("purchase", "`POST /api/commerce/trackPurchase` `{id, user, items[{id, sku, name, price, quantity, "
                     "categories}], total (the order's `revenue` when sent, else its total), createdAt, dataFields}`, "
                     "one per request; other commerce is skipped"),
        ("attribute change", "`POST /api/users/bulkUpdate` `{users: [{email, userId, dataFields, preferUserId}]}` "
                             "with the user's attributes (`$firstname` → `firstName`, `$mobile` → `phoneNumber`, "
                             "…); a deleted attribute is sent as null"),
        ("every event", "user = `email` identity and/or customer ID as `userId` (neither: skipped); `id` = source "
                        "message id, so a retry updates rather than duplicates"),
        ("audience member added / removed (sync)", "`POST /api/lists/subscribe` `{listId, subscribers: [{email, "
                                                  "userId, preferUserId}], updateExistingUsersOnly: false}` or "
                                                  "`POST /api/lists/unsubscribe` `{listId, subscribers, "
                                                  "channelUnsubscribe: false}`, up to 1,000 per request; `listId` "
                                                  "is the connection's `settings.output.list_id`, a static list"),
        ("audience trigger", "the `audience_membership_change` custom event, as any custom event"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, IterableSettings)
        base = settings.base_url.rstrip("/")
        if settings.region == "eu" and base == US_HOST:
            base = EU_HOST
        headers = {"Content-Type": "application/json", "Api-Key": settings.api_key}
        tracked: list[tuple[int, dict[str, Any]]] = []
        users: list[tuple[int, dict[str, Any]]] = []
        requests = []
        runs: list[tuple[str, int, list[tuple[int, dict[str, Any]]]]] = []  # (path, list, subscribers) in order
        for i, item in enumerate(events):
            key = user_key(item)
            data = item.event.data
            if not key:
                continue
            change = membership_of(item)
            if change is not None:
                list_id = change.settings.get("list_id")
                if not isinstance(list_id, int):
                    continue
                path = "/api/lists/subscribe" if change.action == ADD else "/api/lists/unsubscribe"
                subscriber: dict[str, Any] = dict(key)
                if change.action == ADD and settings.prefer_user_id and "userId" in key:
                    subscriber["preferUserId"] = True
                if not runs or runs[-1][:2] != (path, list_id) or len(runs[-1][2]) >= MAX_BULK_ITEMS:
                    runs.append((path, list_id, []))
                runs[-1][2].append((i, subscriber))
                continue
            if isinstance(data, CustomEventData | ScreenViewData):
                tracked.append((i, self.track(item, data, key)))
            elif isinstance(data, UserAttributeChangeData):
                user: dict[str, Any] = {**key, "dataFields": data_fields(item)}
                if settings.prefer_user_id and "userId" in key:
                    user["preferUserId"] = True
                users.append((i, user))
            elif isinstance(data, CommerceEventData) and data.product_action is not None \
                    and data.product_action.action == "purchase":
                requests.append(HttpRequest("POST", f"{base}/api/commerce/trackPurchase", dict(headers),
                                            _encoder.encode(purchase(item, data, key)), (i,)))
        for path, field, entries in (("/api/events/trackBulk", "events", tracked),
                                     ("/api/users/bulkUpdate", "users", users)):
            for chunk in chunks(entries):
                body = _encoder.encode({field: [entry for _, entry in chunk]})
                requests.append(HttpRequest("POST", base + path, dict(headers), body, tuple(i for i, _ in chunk)))
        for path, list_id, entries in runs:
            payload: dict[str, Any] = {"listId": list_id, "subscribers": [s for _, s in entries]}
            payload.update({"updateExistingUsersOnly": False} if path.endswith("/subscribe") else
                           {"channelUnsubscribe": False})
            requests.append(HttpRequest("POST", base + path, dict(headers), _encoder.encode(payload),
                                        tuple(i for i, _ in entries)))
        return sorted(requests, key=lambda r: r.event_indices[0])

    @staticmethod
    def track(item: DeliveryEvent, data: CustomEventData | ScreenViewData, key: dict[str, str]) -> dict[str, Any]:
        if isinstance(data, CustomEventData):
            name = data.event_name
        else:
            web = item.device_info is not None and (item.device_info.platform or "").lower() == "web"
            name = f"{data.screen_name} {'page' if web else 'screen'}"
        return {**key, "eventName": name, "createdAt": item.timestamp_ms // 1000, "dataFields": item.attributes(),
                "id": item.source_message_id}

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        result = classify_http(response)
        if result.outcome is not Outcome.DELIVERED or not request.url.endswith(
                ("/trackBulk", "/bulkUpdate", "/lists/subscribe", "/lists/unsubscribe")):
            return result
        failed = failed_positions(request.body, response.body)
        if not failed:
            return result
        events = tuple(request.event_indices[p] for p in failed if 0 <= p < len(request.event_indices))
        return SendResult(Outcome.ABORT, f"Iterable refused {len(failed)} of the request's items",
                          response.status, failed_indices=events, response_body=result.response_body)


def failed_positions(request_body: bytes, response_body: bytes) -> tuple[int, ...]:
    """Positions (within the request's items) of the users a bulk answer lists as refused."""
    try:
        answer = msgspec.json.decode(response_body)
        sent = msgspec.json.decode(request_body)
    except msgspec.DecodeError:
        return ()
    if not isinstance(answer, dict) or not isinstance(sent, dict):
        return ()
    nested = answer.get("failedUpdates")
    sources = [answer, nested] if isinstance(nested, dict) else [answer]
    emails = {e for s in sources for name in FAILED_EMAILS for e in s.get(name) or () if isinstance(e, str)}
    user_ids = {u for s in sources for name in FAILED_USER_IDS for u in s.get(name) or () if isinstance(u, str)}
    disallowed = set(answer.get("disallowedEventNames") or ())
    items = sent.get("events") or sent.get("users") or sent.get("subscribers") or []
    return tuple(p for p, entry in enumerate(items)
                 if entry.get("email") in emails or entry.get("userId") in user_ids
                 or entry.get("eventName") in disallowed)


destination = Iterable()
