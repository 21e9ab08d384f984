"""The `Product` users pass in, and the typed wire structs of the Events API batch the client sends."""

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass

import msgspec

Scalar = str | int | float | bool | None
UserAttributeValue = str | int | float | bool | list[str]

ENVIRONMENTS = frozenset({"production", "development"})

CUSTOM_EVENT_TYPES = frozenset({
    "navigation", "location", "search", "transaction", "user_content", "user_preference",
    "social", "other", "media", "attribution", "unknown",
})

PRODUCT_ACTIONS = frozenset({
    "add_to_cart", "remove_from_cart", "checkout", "checkout_option", "click", "view_detail",
    "purchase", "refund", "add_to_wishlist", "remove_from_wish_list",
})


@dataclass(frozen=True, slots=True)
class Product:
    """One product of a commerce event: `Product("sku-1", "Mug", 12.5, quantity=2)`."""

    id: str
    name: str
    price: float
    _: KW_ONLY
    quantity: float = 1
    brand: str | None = None
    category: str | None = None
    variant: str | None = None
    position: int | None = None
    custom_attributes: Mapping[str, Scalar] | None = None


class _Wire(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of the wire structs: optional fields left out when unset."""


class WireProduct(_Wire):
    id: str
    name: str
    price: float
    quantity: float
    brand: str | None = None
    category: str | None = None
    variant: str | None = None
    position: int | None = None
    custom_attributes: dict[str, Scalar] | None = None


class ProductAction(_Wire):
    action: str
    products: list[WireProduct]
    transaction_id: str | None = None
    total_amount: float | None = None
    tax_amount: float | None = None
    shipping_amount: float | None = None


class _Data(_Wire):
    timestamp_unixtime_ms: int
    source_message_id: str


class CustomEventData(_Data):
    event_name: str
    custom_event_type: str
    custom_attributes: dict[str, Scalar] | None = None


class ScreenViewData(_Data):
    screen_name: str
    custom_attributes: dict[str, Scalar] | None = None


class CommerceEventData(_Data):
    product_action: ProductAction
    currency_code: str | None = None
    custom_attributes: dict[str, Scalar] | None = None


class UserAttributeChangeData(_Data):
    user_attribute_name: str
    # Always sent, null when absent: `new` is null for a removal, `old` for a first value.
    new: UserAttributeValue | None
    old: UserAttributeValue | None
    deleted: bool
    is_new_attribute: bool


EventData = CustomEventData | ScreenViewData | CommerceEventData | UserAttributeChangeData


class Event(_Wire):
    event_type: str
    data: EventData


class Batch(_Wire):
    """One user's batch; events arrive pre-encoded so sizes are known before the batch is built."""

    environment: str
    source_request_id: str
    events: list[msgspec.Raw]
    mpid: int | None = None
    user_identities: dict[str, str] | None = None
    user_attributes: dict[str, UserAttributeValue] | None = None
    deleted_user_attributes: list[str] | None = None
