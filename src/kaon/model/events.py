"""Canonical events: one `data` struct per mParticle event type, plus Kaon's `group` and `alias`."""

from typing import Any

import msgspec

from kaon.model.values import AttrValue, Int64

EVENT_TYPES = (
    "session_start", "session_end", "screen_view", "custom_event", "crash_report", "opt_out",
    "first_run", "pre_attribution", "push_registration", "application_state_transition",
    "push_message", "network_performance", "breadcrumb", "profile", "push_reaction",
    "commerce_event", "user_attribute_change", "user_identity_change", "uninstall",
    "validation_result", "unknown",
    # Kaon extensions for Segment-spec calls that mParticle has no event for.
    "group", "alias",
)

CUSTOM_EVENT_TYPES = frozenset({
    "navigation", "location", "search", "transaction", "user_content", "user_preference",
    "social", "other", "media", "attribution", "unknown",
})


class Base(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base for model structs: keyword-only, defaults omitted when encoding."""


class Location(Base, kw_only=True):
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None
    country_code: str | None = None
    region_code: str | None = None
    city_name: str | None = None
    postal_code: str | None = None
    dma_code: Int64 | None = None
    location_source: str | None = None


class CommonData(Base, kw_only=True):
    """Fields every event type shares."""

    timestamp_unixtime_ms: Int64 | None = None
    source_message_id: str | None = None
    session_uuid: str | None = None
    session_id: Int64 | None = None
    session_start_unixtime_ms: Int64 | None = None
    event_start_unixtime_ms: Int64 | None = None
    event_id: Int64 | None = None
    event_num: Int64 | None = None
    custom_attributes: dict[str, AttrValue] | None = None
    custom_flags: dict[str, Any] | None = None
    location: Location | None = None
    device_current_state: dict[str, Any] | None = None
    is_goal_defined: bool | None = None
    lifetime_value_change: bool | None = None
    lifetime_value_attribute_name: str | None = None
    data_connection_type: str | None = None
    active_time_on_site_ms: Int64 | None = None


class CustomEventData(CommonData, kw_only=True):
    event_name: str
    custom_event_type: str = "other"


class ScreenViewData(CommonData, kw_only=True):
    screen_name: str
    activity_type: str | None = None


class Product(Base, kw_only=True):
    id: str | None = None
    name: str | None = None
    brand: str | None = None
    category: str | None = None
    variant: str | None = None
    position: Int64 | None = None
    price: float | None = None
    quantity: float | None = None
    coupon_code: str | None = None
    added_to_cart_time_ms: Int64 | None = None
    total_product_amount: float | None = None
    custom_attributes: dict[str, AttrValue] | None = None


class ProductAction(Base, kw_only=True):
    action: str
    checkout_step: Int64 | None = None
    checkout_options: str | None = None
    product_action_list: str | None = None
    product_list_source: str | None = None
    transaction_id: str | None = None
    affiliation: str | None = None
    total_amount: float | None = None
    tax_amount: float | None = None
    shipping_amount: float | None = None
    coupon_code: str | None = None
    products: list[Product] | None = None


class Promotion(Base, kw_only=True):
    id: str | None = None
    name: str | None = None
    creative: str | None = None
    position: str | None = None


class PromotionAction(Base, kw_only=True):
    action: str
    promotions: list[Promotion] | None = None


class ProductImpression(Base, kw_only=True):
    product_impression_list: str | None = None
    products: list[Product] | None = None


class ShoppingCart(Base, kw_only=True):
    products: list[Product] | None = None


class CommerceEventData(CommonData, kw_only=True):
    product_action: ProductAction | None = None
    promotion_action: PromotionAction | None = None
    product_impressions: list[ProductImpression] | None = None
    shopping_cart: ShoppingCart | None = None
    currency_code: str | None = None
    screen_name: str | None = None
    is_non_interactive: bool | None = None
    event_name: str | None = None
    custom_event_type: str | None = None
    # The Python SDK sends its crash reports as commerce events (an SDK bug); these fields let the
    # adapter recognise one and reclassify it as `crash_report`.
    class_name: str | None = None
    severity: str | None = None
    message: str | None = None
    stack_trace: str | None = None


class SessionEndData(CommonData, kw_only=True):
    session_duration_ms: Int64 | None = None


class ApplicationStateTransitionData(CommonData, kw_only=True):
    application_transition_type: str
    is_first_run: bool | None = None
    is_upgrade: bool | None = None
    successfully_closed: bool | None = None
    push_notification_payload: str | None = None
    launch_referral: str | None = None


class CrashReportData(CommonData, kw_only=True):
    class_name: str | None = None
    severity: str | None = None
    message: str | None = None
    stack_trace: str | None = None
    exception_handled: bool | None = None
    topmost_context: str | None = None
    breadcrumbs: list[str] | None = None
    pl_crash_report_file_base64: str | None = None
    ios_image_base_address: Int64 | None = None
    ios_image_size: Int64 | None = None
    session_number: Int64 | None = None


class BreadcrumbData(CommonData, kw_only=True):
    label: str
    session_number: Int64 | None = None


class OptOutData(CommonData, kw_only=True):
    is_opted_out: bool


class PushRegistrationData(CommonData, kw_only=True):
    register: bool
    registration_token: str


class PushMessageData(CommonData, kw_only=True):
    push_message_type: str
    push_message_token: str | None = None
    message: str | None = None
    network: str | None = None
    push_notification_payload: str | None = None
    application_state: str | None = None
    action_identifier: str | None = None
    push_message_behavior: int | str | None = None


class NetworkPerformanceData(CommonData, kw_only=True):
    url: str
    response_code: Int64
    http_verb: str | None = None
    time_elapsed: Int64 | None = None
    bytes_in: Int64 | None = None
    bytes_out: Int64 | None = None
    data: str | None = None


class UserAttributeChangeData(CommonData, kw_only=True):
    user_attribute_name: str
    new: AttrValue = None
    old: AttrValue = None
    deleted: bool | None = None
    is_new_attribute: bool | None = None


class IdentityValue(Base, kw_only=True):
    identity_type: str | None = None
    identity: str | None = None
    timestamp_unixtime_ms: Int64 | None = None
    created_this_batch: bool | None = None


class UserIdentityChangeData(CommonData, kw_only=True):
    new: IdentityValue | None = None
    old: IdentityValue | None = None


class ProfileData(CommonData, kw_only=True):
    profile_event_type: str | None = None
    previous_mpid: Int64 | None = None
    current_mpid: Int64 | None = None


class GroupData(CommonData, kw_only=True):
    """Kaon extension: a Segment `group` call."""

    group_id: str
    traits: dict[str, AttrValue] | None = None


class AliasData(CommonData, kw_only=True):
    """Kaon extension: a Segment `alias` call (previous id → user id)."""

    previous_id: str
    user_id: str | None = None


class EventBase(Base, tag_field="event_type"):
    """A canonical event; `event_type` is the struct's tag and `data` its typed payload."""

    data: CommonData

    @property
    def event_type(self) -> str:
        return str(type(self).__struct_config__.tag)


def _common() -> CommonData:
    return CommonData()


class SessionStart(EventBase, tag="session_start"):
    data: CommonData = msgspec.field(default_factory=_common)


class SessionEnd(EventBase, tag="session_end"):
    data: SessionEndData = msgspec.field(default_factory=SessionEndData)


class ScreenView(EventBase, tag="screen_view"):
    data: ScreenViewData


class CustomEvent(EventBase, tag="custom_event"):
    data: CustomEventData


class CrashReport(EventBase, tag="crash_report"):
    data: CrashReportData = msgspec.field(default_factory=CrashReportData)


class OptOut(EventBase, tag="opt_out"):
    data: OptOutData


class FirstRun(EventBase, tag="first_run"):
    data: CommonData = msgspec.field(default_factory=_common)


class PreAttribution(EventBase, tag="pre_attribution"):
    data: CommonData = msgspec.field(default_factory=_common)


class PushRegistration(EventBase, tag="push_registration"):
    data: PushRegistrationData


class ApplicationStateTransition(EventBase, tag="application_state_transition"):
    data: ApplicationStateTransitionData


class PushMessage(EventBase, tag="push_message"):
    data: PushMessageData


class NetworkPerformance(EventBase, tag="network_performance"):
    data: NetworkPerformanceData


class Breadcrumb(EventBase, tag="breadcrumb"):
    data: BreadcrumbData


class Profile(EventBase, tag="profile"):
    data: ProfileData = msgspec.field(default_factory=ProfileData)


class PushReaction(EventBase, tag="push_reaction"):
    data: CommonData = msgspec.field(default_factory=_common)


class CommerceEvent(EventBase, tag="commerce_event"):
    data: CommerceEventData = msgspec.field(default_factory=CommerceEventData)


class UserAttributeChange(EventBase, tag="user_attribute_change"):
    data: UserAttributeChangeData


class UserIdentityChange(EventBase, tag="user_identity_change"):
    data: UserIdentityChangeData = msgspec.field(default_factory=UserIdentityChangeData)


class Uninstall(EventBase, tag="uninstall"):
    data: CommonData = msgspec.field(default_factory=_common)


class ValidationResult(EventBase, tag="validation_result"):
    data: CommonData = msgspec.field(default_factory=_common)


class UnknownEvent(EventBase, tag="unknown"):
    data: CommonData = msgspec.field(default_factory=_common)


class Group(EventBase, tag="group"):
    data: GroupData


class Alias(EventBase, tag="alias"):
    data: AliasData


Event = (
    SessionStart | SessionEnd | ScreenView | CustomEvent | CrashReport | OptOut | FirstRun
    | PreAttribution | PushRegistration | ApplicationStateTransition | PushMessage
    | NetworkPerformance | Breadcrumb | Profile | PushReaction | CommerceEvent
    | UserAttributeChange | UserIdentityChange | Uninstall | ValidationResult | UnknownEvent
    | Group | Alias
)


def event_name(event: EventBase) -> str | None:
    """The name a person would call the event by: custom event name, screen name or commerce action."""
    data = event.data
    if isinstance(data, CustomEventData):
        return data.event_name
    if isinstance(data, ScreenViewData):
        return data.screen_name
    if isinstance(data, CommerceEventData):
        if data.event_name:
            return data.event_name
        if data.product_action is not None:
            return data.product_action.action
        if data.promotion_action is not None:
            return f"promotion_{data.promotion_action.action}"
        if data.product_impressions:
            return "impression"
    return None
