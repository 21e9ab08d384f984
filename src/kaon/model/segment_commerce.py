"""Segment's e-commerce spec events (Order Completed, Product Added, ...) mapped to canonical commerce events.

Event names match case-insensitively. Properties a commerce field takes are removed from the event's
custom attributes; a property whose value cannot be converted (a non-numeric `price`) stays there.
"""

import math
from collections.abc import Callable
from typing import Any, Final, TypeVar

from kaon.model.events import (
    CommerceEvent,
    CommerceEventData,
    Product,
    ProductAction,
    ProductImpression,
    Promotion,
    PromotionAction,
)
from kaon.model.values import AttrValue

T = TypeVar("T")

PRODUCT_ACTIONS: Final = {
    "order completed": "purchase",
    "order refunded": "refund",
    "product added": "add_to_cart",
    "product removed": "remove_from_cart",
    "checkout started": "checkout",
    "checkout step viewed": "checkout",
    "checkout step completed": "checkout",
    "payment info entered": "checkout_option",
    "product viewed": "view_detail",
    "product clicked": "click",
    "product added to wishlist": "add_to_wishlist",
    "product removed from wishlist": "remove_from_wish_list",
}
PROMOTION_ACTIONS: Final = {"promotion viewed": "view", "promotion clicked": "click"}
PRODUCT_LIST_VIEWED: Final = "product list viewed"
# Events about one product, whose product fields sit at the top of `properties`.
_SINGLE_PRODUCT: Final = frozenset({
    "product added", "product removed", "product viewed", "product clicked",
    "product added to wishlist", "product removed from wishlist",
})
_PRODUCT_KEYS: Final = frozenset({
    "product_id", "sku", "name", "brand", "category", "variant", "price", "quantity", "position", "coupon",
})
_MAX_INT: Final = 2**63 - 1


def is_commerce(event: str) -> bool:
    key = event.strip().lower()
    return key in PRODUCT_ACTIONS or key in PROMOTION_ACTIONS or key == PRODUCT_LIST_VIEWED


Flatten = Callable[[dict[str, Any]], dict[str, AttrValue] | None]


def commerce_event(
    event: str, properties: dict[str, Any], flatten: Flatten, timestamp_ms: int, message_id: str
) -> CommerceEvent:
    """The commerce event for a Segment e-commerce `track` call; `flatten` makes attribute maps."""
    key = event.strip().lower()
    rest = dict(properties)
    product_action = promotion_action = None
    impressions = None
    if key in PRODUCT_ACTIONS:
        product_action = _product_action(PRODUCT_ACTIONS[key], key in _SINGLE_PRODUCT, rest, flatten)
    elif key in PROMOTION_ACTIONS:
        promotion = Promotion(
            id=_take(rest, "promotion_id", text),
            name=_take(rest, "name", text),
            creative=_take(rest, "creative", text),
            position=_take(rest, "position", text),
        )
        promotion_action = PromotionAction(action=PROMOTION_ACTIONS[key], promotions=[promotion])
    else:
        list_name = _first(rest, ("list_id", "category"), text)
        impressions = [
            ProductImpression(product_impression_list=list_name, products=_products(rest, flatten))
        ]
    return CommerceEvent(
        data=CommerceEventData(
            event_name=event,
            product_action=product_action,
            promotion_action=promotion_action,
            product_impressions=impressions,
            currency_code=_take(rest, "currency", text),
            custom_attributes=flatten(rest),
            timestamp_unixtime_ms=timestamp_ms,
            source_message_id=message_id,
        )
    )


def _product_action(action: str, single: bool, rest: dict[str, Any], flatten: Flatten) -> ProductAction:
    products: list[Product] | None
    if single and "products" not in rest:
        # Only the product's own fields: the other properties stay on the event.
        products = [_product(rest)] if _PRODUCT_KEYS & rest.keys() else None
    else:
        products = _products(rest, flatten)
    checkout = action in ("checkout", "checkout_option")
    return ProductAction(
        action=action,
        transaction_id=_first(rest, ("order_id", "checkout_id"), text),
        affiliation=_take(rest, "affiliation", text),
        total_amount=_first(rest, ("total", "revenue"), number),
        tax_amount=_take(rest, "tax", number),
        shipping_amount=_take(rest, "shipping", number),
        coupon_code=_take(rest, "coupon", text),
        checkout_step=_take(rest, "step", integer) if checkout else None,
        checkout_options=_first(rest, ("payment_method", "shipping_method"), text) if checkout else None,
        products=products,
    )


def _products(rest: dict[str, Any], flatten: Flatten) -> list[Product] | None:
    """`properties.products` mapped, when it is a list of objects (otherwise it stays an attribute)."""
    raw = rest.get("products")
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        return None
    del rest["products"]
    products = []
    for item in raw:
        fields = dict(item)
        product = _product(fields)
        # A listed product's other keys (url, image_url, ...) become its custom attributes.
        product.custom_attributes = flatten(fields)
        products.append(product)
    return products


def _product(fields: dict[str, Any]) -> Product:
    """A product from Segment's product fields, removing the ones it takes from `fields`."""
    return Product(
        id=_first(fields, ("product_id", "sku"), text),
        name=_take(fields, "name", text),
        brand=_take(fields, "brand", text),
        category=_take(fields, "category", text),
        variant=_take(fields, "variant", text),
        price=_take(fields, "price", number),
        quantity=_take(fields, "quantity", number),
        position=_take(fields, "position", integer),
        coupon_code=_take(fields, "coupon", text),
    )


def _first(fields: dict[str, Any], keys: tuple[str, ...], convert: Callable[[Any], T | None]) -> T | None:
    """The first of `keys` that converts, taken from `fields`."""
    for key in keys:
        value = _take(fields, key, convert)
        if value is not None:
            return value
    return None


def _take(fields: dict[str, Any], key: str, convert: Callable[[Any], T | None]) -> T | None:
    """`fields[key]` converted, removing it from `fields` only when the conversion succeeds."""
    if key not in fields:
        return None
    value = convert(fields[key])
    if value is not None:
        del fields[key]
    return value


def text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        result = float(value) if isinstance(value, int | float | str) else None
    except (ValueError, OverflowError):
        return None
    return result if result is not None and math.isfinite(result) else None


def integer(value: Any) -> int | None:
    result = number(value)
    if result is None or not result.is_integer() or abs(result) > _MAX_INT:
        return None
    return int(result)
