"""Pure builders: the current user's state and the wire event each public call turns into."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import msgspec

from kaon.client.models import (
    CUSTOM_EVENT_TYPES,
    PRODUCT_ACTIONS,
    CommerceEventData,
    CustomEventData,
    Event,
    Product,
    ProductAction,
    Scalar,
    ScreenViewData,
    UserAttributeChangeData,
    UserAttributeValue,
    WireProduct,
)
from kaon.model.identities import USER_IDENTITY_TYPES

_encoder = msgspec.json.Encoder()
_EMPTY: Mapping[str, UserAttributeValue] = MappingProxyType({})

UserKey = tuple[int | None, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class User:
    """Who events are attributed to, with the attributes known when an event was logged."""

    mpid: int | None = None
    identities: tuple[tuple[str, str], ...] = ()
    attributes: Mapping[str, UserAttributeValue] = field(default_factory=lambda: _EMPTY)

    @property
    def key(self) -> UserKey:
        return (self.mpid, self.identities)

    def with_attribute(self, name: str, value: UserAttributeValue | None) -> "User":
        """A copy with `name` set to `value`, or removed when `value` is None."""
        attributes = dict(self.attributes)
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
        return User(self.mpid, self.identities, MappingProxyType(attributes))


@dataclass(frozen=True, slots=True)
class Queued:
    """One logged event, encoded, with the user it belongs to."""

    user: User
    source_message_id: str
    payload: bytes
    removed_attribute: str | None = None


def new_message_id() -> str:
    return str(uuid.uuid4())


def identify(
    customer_id: str | None, email: str | None, mpid: int | None, other: Mapping[str, str | None]
) -> tuple[int | None, tuple[tuple[str, str], ...]]:
    """Validated (mpid, sorted identities) for `Kaon.identify`."""
    if mpid is not None and (isinstance(mpid, bool) or not isinstance(mpid, int)):
        raise TypeError(f"mpid must be an int, got {type(mpid).__name__}")
    given = {"customer_id": customer_id, "email": email, **other}
    identities: list[tuple[str, str]] = []
    for name, value in given.items():
        if name not in USER_IDENTITY_TYPES:
            known = ", ".join(USER_IDENTITY_TYPES)
            raise ValueError(f"unknown identity type {name!r}; expected one of {known}")
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise TypeError(f"identity {name!r} must be a non-empty str")
        identities.append((name, value))
    return mpid, tuple(sorted(identities))


def _attributes(attributes: Mapping[str, Scalar] | None, what: str) -> dict[str, Scalar] | None:
    if attributes is None:
        return None
    out: dict[str, Scalar] = {}
    for key, value in attributes.items():
        if not isinstance(key, str):
            raise TypeError(f"{what} names must be str, got {type(key).__name__}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(f"{what} {key!r} must be a str, number, bool or None, got {type(value).__name__}")
        out[key] = value
    return out or None


def _name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty str")
    return name


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def custom_event(
    name: str, attributes: Mapping[str, Scalar] | None, event_type: str, now_ms: int, message_id: str
) -> Event:
    if event_type not in CUSTOM_EVENT_TYPES:
        raise ValueError(f"event_type {event_type!r} is not one of {', '.join(sorted(CUSTOM_EVENT_TYPES))}")
    return Event(event_type="custom_event", data=CustomEventData(
        event_name=_name(name, "event name"), custom_event_type=event_type,
        custom_attributes=_attributes(attributes, "event attribute"),
        timestamp_unixtime_ms=now_ms, source_message_id=message_id,
    ))


def screen_view(name: str, attributes: Mapping[str, Scalar] | None, now_ms: int, message_id: str) -> Event:
    return Event(event_type="screen_view", data=ScreenViewData(
        screen_name=_name(name, "screen name"), custom_attributes=_attributes(attributes, "screen attribute"),
        timestamp_unixtime_ms=now_ms, source_message_id=message_id,
    ))


def _product(product: Product) -> WireProduct:
    if not isinstance(product, Product):
        raise TypeError(f"products must be kaon.client.Product, got {type(product).__name__}")
    return WireProduct(
        id=product.id, name=product.name, price=product.price, quantity=product.quantity,
        brand=product.brand, category=product.category, variant=product.variant, position=product.position,
        custom_attributes=_attributes(product.custom_attributes, "product attribute"),
    )


def commerce_event(
    action: str,
    products: Sequence[Product],
    *,
    transaction_id: str | None,
    total_amount: float | None,
    tax_amount: float | None,
    shipping_amount: float | None,
    currency_code: str | None,
    attributes: Mapping[str, Scalar] | None,
    now_ms: int,
    message_id: str,
) -> Event:
    if action not in PRODUCT_ACTIONS:
        raise ValueError(f"commerce action {action!r} is not one of {', '.join(sorted(PRODUCT_ACTIONS))}")
    return Event(event_type="commerce_event", data=CommerceEventData(
        product_action=ProductAction(
            action=action, products=[_product(p) for p in products], transaction_id=transaction_id,
            total_amount=total_amount, tax_amount=tax_amount, shipping_amount=shipping_amount,
        ),
        currency_code=currency_code, custom_attributes=_attributes(attributes, "commerce attribute"),
        timestamp_unixtime_ms=now_ms, source_message_id=message_id,
    ))


def check_user_attribute(name: str, value: UserAttributeValue) -> UserAttributeValue:
    _name(name, "user attribute name")
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise TypeError(f"user attribute {name!r}: a list value must hold only str")
        return list(value)
    if not isinstance(value, str | int | float | bool):
        raise TypeError(f"user attribute {name!r} must be a str, number, bool or list of str")
    return value


def attribute_change(
    name: str, *, new: UserAttributeValue | None, old: UserAttributeValue | None, existed: bool,
    now_ms: int, message_id: str,
) -> Event:
    return Event(event_type="user_attribute_change", data=UserAttributeChangeData(
        user_attribute_name=name, new=new, old=old, deleted=new is None, is_new_attribute=not existed,
        timestamp_unixtime_ms=now_ms, source_message_id=message_id,
    ))
