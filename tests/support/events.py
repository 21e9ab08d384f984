"""Builders of DeliveryEvents for destination tests: one per event kind a destination must map."""

import msgspec

from kaon.destinations.event import DeliveryEvent
from kaon.model.batch import ApplicationInfo, BatchContext, DeviceInfo
from kaon.model.context import CampaignContext, LibraryContext, PageContext
from kaon.model.events import (
    CommerceEvent,
    CommerceEventData,
    CustomEvent,
    CustomEventData,
    Product,
    ProductAction,
    ScreenView,
    ScreenViewData,
    UserAttributeChange,
    UserAttributeChangeData,
)

T0 = 1_795_600_000_000  # 2026-11-25, a fixed clock for reproducible payloads
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
# A browser's context, as the Segment adapter makes it of analytics.js's `context`.
WEB = dict(
    ip="198.51.100.4",
    device_info=DeviceInfo(platform="web", http_header_user_agent=CHROME_MAC, locale_language="de",
                           locale_country="DE", screen_width=1440, screen_height=900),
    application_info=None,
    context=BatchContext(
        page=PageContext(url="https://shop.example/shoes?utm_source=news", path="/shoes",
                         referrer="https://news.example/today", title="Shoes", search="?utm_source=news"),
        campaign=CampaignContext(name="spring", source="news", medium="email", term="shoes", content="hero",
                                 other={"adgroup": "a-7"}),
        library=LibraryContext(name="analytics.js", version="next-1.70.0"), locale="de-DE",
        timezone="Europe/Berlin"),
)


def _event(n: int, event: object, **context: object) -> DeliveryEvent:
    base: dict[str, object] = dict(
        event_id=n, workspace_id="ws_test", input_id="in_test", mpid=8675309 + n, event=event,
        source_message_id=f"00000000-0000-4000-8000-{n:012d}", timestamp_ms=T0 + n * 1000,
        environment="production", ip="203.0.113.7",
        user_identities={"customer_id": "cust-1", "email": "jane@example.com", "mobile_number": "+15555550100"},
        user_attributes={"$firstname": "Jane", "$lastname": "Doe", "tier": "gold", "$city": "Berlin"},
        device_info=DeviceInfo(platform="iOS", ios_advertising_id="613ff95e-4b2a-4f86-9a13-7e5f1d3c6d91",
                               os_version="17.1", device_model="iPhone15,2", http_header_user_agent="Kaon/1.0"),
        application_info=ApplicationInfo(application_name="demo", application_version="1.2.3"),
    )
    base.update(context)
    return DeliveryEvent(**base)  # type: ignore[arg-type]


def custom(n: int = 1, name: str = "Clicked Button", attributes: dict[str, object] | None = None) -> DeliveryEvent:
    return _event(n, CustomEvent(data=CustomEventData(
        event_name=name, custom_event_type="navigation", custom_attributes=attributes or {"color": "blue", "n": 3},
        timestamp_unixtime_ms=T0 + n * 1000, source_message_id=f"00000000-0000-4000-8000-{n:012d}")))


def screen(n: int = 2, name: str = "Home") -> DeliveryEvent:
    return _event(n, ScreenView(data=ScreenViewData(
        screen_name=name, custom_attributes={"referrer": "ad"}, timestamp_unixtime_ms=T0 + n * 1000,
        source_message_id=f"00000000-0000-4000-8000-{n:012d}")))


def purchase(n: int = 3, attributes: dict[str, object] | None = None) -> DeliveryEvent:
    """An Order Completed of total 25.0 (USD); `attributes` are its other properties (e.g. a `revenue`)."""
    return _event(n, CommerceEvent(data=CommerceEventData(custom_attributes=attributes,  # type: ignore[arg-type]
        product_action=ProductAction(action="purchase", transaction_id="T-1", total_amount=25.0, tax_amount=0.5,
                                     shipping_amount=0.0, products=[
                                         Product(id="sku-1", name="Foo", category="Toys", price=12.5, quantity=2)]),
        currency_code="USD", timestamp_unixtime_ms=T0 + n * 1000,
        source_message_id=f"00000000-0000-4000-8000-{n:012d}")))


def attribute_change(n: int = 4, name: str = "tier", value: str = "platinum") -> DeliveryEvent:
    return _event(n, UserAttributeChange(data=UserAttributeChangeData(
        user_attribute_name=name, new=value, old="gold", deleted=False, is_new_attribute=False,
        timestamp_unixtime_ms=T0 + n * 1000, source_message_id=f"00000000-0000-4000-8000-{n:012d}")),
        user_attributes={"$firstname": "Jane", "$lastname": "Doe", "tier": value, "$city": "Berlin"})


def every_kind() -> list[DeliveryEvent]:
    return [custom(), screen(), purchase(), attribute_change()]


def on_the_web(item: DeliveryEvent) -> DeliveryEvent:
    """`item` as sent from a browser through analytics.js (the context in `WEB`)."""
    return msgspec.structs.replace(item, **WEB)  # type: ignore[arg-type]


def tracked(n: int = 5, name: str = "Signed Up", **properties: object) -> DeliveryEvent:
    """A track call's custom event with `properties` (Segment's reserved `revenue`, `currency`, `value`, ...)."""
    return custom(n, name=name, attributes=dict(properties))
