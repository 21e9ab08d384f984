"""The money an event carries (Segment's reserved `revenue`, `currency`, `value`), read one way for every destination.

Where the canonical model keeps it: a custom event has no money fields (nor has mParticle's), so a track
call's `revenue`, `currency` and `value` stay custom attributes, as do Amplitude's `price`, `quantity`,
`productId` and `revenueType`; a commerce event's product action has the order's total (`total_amount`, from
`total`, else `revenue`) and the event its currency (`currency_code`), while a `revenue` sent beside `total`
stays an attribute. `revenue_of` is the one reading of both that destinations use:

- `revenue`: money the event made: Segment's `revenue` when sent (on an order it wins over `total`, as in
  RudderStack's Amplitude and Meta fixtures), else a purchase's or refund's total. Other commerce (a cart
  addition) and custom events without `revenue` made none.
- `value`: what the event is worth in money: its revenue when it made some, else Segment's `value` (an
  abstract worth, e.g. a lead's), else the product action's total or its products' price times quantity. The
  `value` fields of ad and web analytics tools (GA4, Meta) take this.
- `currency`: ISO 4217 as sent; None means US dollars (Segment's rule), which destinations fill in.
"""

from typing import Any, Final

import msgspec

from kaon.model.events import CommerceEventData, CustomEventData, EventBase
from kaon.model.segment_commerce import number, text

DEFAULT_CURRENCY: Final = "USD"  # Segment: "If this isn't set, Segment assumes the revenue to be in US dollars."
_MONEY_ACTIONS: Final = frozenset({"purchase", "refund"})


class Revenue(msgspec.Struct, frozen=True, kw_only=True):
    revenue: float | None = None
    value: float | None = None
    currency: str | None = None
    refund: bool = False  # amounts are as sent (positive); destinations that chart refunds negate them
    # Amplitude's revenue fields, when the event carries them as attributes.
    price: float | None = None
    quantity: float | None = None
    product_id: str | None = None
    revenue_type: str | None = None

    @property
    def currency_or_default(self) -> str:
        return self.currency or DEFAULT_CURRENCY


def revenue_of(event: EventBase) -> Revenue | None:
    """The event's money, or None when it carries none (no revenue and no value)."""
    data = event.data
    attributes: dict[str, Any] = dict(data.custom_attributes or {})
    revenue, value = number(attributes.get("revenue")), number(attributes.get("value"))
    currency = text(attributes.get("currency"))
    refund = False
    if isinstance(data, CommerceEventData):
        action = data.product_action
        if action is None:
            return None
        products = action.products or []
        total = action.total_amount
        if total is None and products:
            total = sum((p.price or 0.0) * (p.quantity if p.quantity is not None else 1) for p in products)
        refund = action.action == "refund"
        if action.action in _MONEY_ACTIONS and revenue is None:
            revenue = action.total_amount
        elif action.action not in _MONEY_ACTIONS:
            revenue = None  # a cart addition or a checkout step made no money yet
        value = revenue if revenue is not None else value if value is not None else total
        currency = data.currency_code or currency
    elif isinstance(data, CustomEventData):
        value = revenue if revenue is not None else value
    else:
        return None
    if revenue is None and value is None:
        return None
    return Revenue(
        revenue=revenue, value=value, currency=currency, refund=refund,
        price=number(attributes.get("price")), quantity=number(attributes.get("quantity")),
        product_id=text(attributes.get("productId", attributes.get("product_id"))),
        revenue_type=text(attributes.get("revenueType", attributes.get("revenue_type"))),
    )
