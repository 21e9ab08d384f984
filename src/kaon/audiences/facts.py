"""What an event offers audience criteria and calculated attributes: its time, type, name and attributes.

Built from the event's canonical JSON (`msgspec.to_builtins` of the model event, or a stored event's body), so the
live path and the backfill over stored history read events the same way. Attribute names are matched
case-insensitively (keys are lower-cased). A commerce event is also known by its product action (`purchase`,
`add_to_cart`: Segment's "Order Completed" is a purchase), and its attributes also hold its product action's fields
(`total_amount`, `transaction_id`, ...) and `currency_code`; its products keep their own fields and attributes.
"""

from typing import Any

import msgspec

from kaon.model.events import CommerceEventData, CustomEventData, EventBase, ScreenViewData

_ACTION_FIELDS = ("total_amount", "tax_amount", "shipping_amount", "transaction_id", "affiliation", "coupon_code",
                  "checkout_step", "checkout_options", "product_action_list", "product_list_source")
_PRODUCT_FIELDS = ("id", "name", "brand", "category", "variant", "position", "price", "quantity", "coupon_code",
                   "total_product_amount")


class Fact(msgspec.Struct, frozen=True):
    ts: int
    event_type: str
    name: str | None
    custom_event_type: str | None
    attributes: dict[str, Any]
    products: list[dict[str, Any]] = msgspec.field(default_factory=list)
    action: str | None = None  # a commerce event's product action (`purchase`), also matched as its name


def _lower(attrs: object) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in attrs.items()} if isinstance(attrs, dict) else {}


def _name(event_type: str, data: dict[str, Any]) -> str | None:
    """As kaon.model.events.event_name: custom event name, screen name or commerce action."""
    if event_type == "custom_event":
        return str(data.get("event_name") or "") or None
    if event_type == "screen_view":
        return str(data.get("screen_name") or "") or None
    if event_type == "commerce_event":
        if data.get("event_name"):
            return str(data["event_name"])
        action = data.get("product_action") or {}
        if action.get("action"):
            return str(action["action"])
        promotion = data.get("promotion_action") or {}
        if promotion.get("action"):
            return f"promotion_{promotion['action']}"
        if data.get("product_impressions"):
            return "impression"
    return None


def fact_of(event: dict[str, Any], default_ts: int) -> Fact:
    """The fact of one event in canonical JSON (`{"event_type", "data": {...}}`)."""
    event_type = str(event.get("event_type") or "")
    data = event.get("data") or {}
    ts = data.get("timestamp_unixtime_ms")
    attributes = _lower(data.get("custom_attributes"))
    products: list[dict[str, Any]] = []
    if event_type == "commerce_event":
        action = data.get("product_action") or {}
        for key in _ACTION_FIELDS:
            if action.get(key) is not None:
                attributes.setdefault(key, action[key])
        if data.get("currency_code") is not None:
            attributes.setdefault("currency_code", data["currency_code"])
        for product in action.get("products") or []:
            row = _lower(product.get("custom_attributes"))
            for key in _PRODUCT_FIELDS:
                if product.get(key) is not None:
                    row.setdefault(key, product[key])
            products.append(row)
    # The model leaves a custom event's default type out of its JSON (omit_defaults): it is still "other".
    custom_type = data.get("custom_event_type") or ("other" if event_type == "custom_event" else None)
    action = (data.get("product_action") or {}).get("action") if event_type == "commerce_event" else None
    return Fact(ts=int(ts) if isinstance(ts, int) and not isinstance(ts, bool) else default_ts,
                event_type=event_type, name=_name(event_type, data),
                custom_event_type=str(custom_type).lower() if custom_type else None,
                attributes=attributes, products=products, action=str(action).lower() if action else None)


def _product_row(product: Any) -> dict[str, Any]:
    row = _lower(product.custom_attributes)
    for key in _PRODUCT_FIELDS:
        value = getattr(product, key)
        if value is not None:
            row.setdefault(key, value)
    return row


def fact_of_event(event: EventBase, default_ts: int) -> Fact:
    """The fact of one model event, read from its fields: the same Fact as `fact_of(msgspec.to_builtins(event))`
    (a test holds them equal) without building the event's JSON first (the process stage's hot path)."""
    event_type = str(type(event).__struct_config__.tag)
    data = event.data
    ts = data.timestamp_unixtime_ms
    attributes = _lower(data.custom_attributes)
    products: list[dict[str, Any]] = []
    name: str | None = None
    custom_type: str | None = None
    action: str | None = None
    if isinstance(data, CustomEventData):
        name = str(data.event_name or "") or None
        custom_type = data.custom_event_type or "other"
    elif isinstance(data, ScreenViewData):
        name = str(data.screen_name or "") or None
    elif isinstance(data, CommerceEventData):
        custom_type = data.custom_event_type
        pa = data.product_action
        if pa is not None:
            for key in _ACTION_FIELDS:
                value = getattr(pa, key)
                if value is not None:
                    attributes.setdefault(key, value)
            products = [_product_row(p) for p in pa.products or ()]
            action = pa.action
        if data.currency_code is not None:
            attributes.setdefault("currency_code", data.currency_code)
        if data.event_name:
            name = str(data.event_name)
        elif action:
            name = str(action)
        elif data.promotion_action is not None and data.promotion_action.action:
            name = f"promotion_{data.promotion_action.action}"
        elif data.product_impressions:
            name = "impression"
    else:
        custom_type = getattr(data, "custom_event_type", None)
    return Fact(ts=int(ts) if isinstance(ts, int) and not isinstance(ts, bool) else default_ts,
                event_type=event_type, name=name,
                custom_event_type=str(custom_type).lower() if custom_type else None,
                attributes=attributes, products=products, action=str(action).lower() if action else None)
