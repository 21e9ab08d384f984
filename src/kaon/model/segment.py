"""The Segment-spec adapter: /v1/<kind> calls (from Segment or RudderStack SDKs) mapped to canonical batches.

Mapping choices a user may notice:
- One Batch per call. `userId` is `customer_id`, `anonymousId` is the batch's `mp_deviceid` (the device
  application stamp), `traits.email`/`traits.phone` (identify traits, else `context.traits`) are
  `email`/`mobile_number`.
- Event time is `timestamp`; else `originalTimestamp` corrected for the client's clock skew
  (receivedAt - (sentAt - originalTimestamp), receivedAt being the server's receive time: a call's own
  `receivedAt` is ignored); else the receive time. `sentAt` is the call's, else the batch's.
  Timestamps are ISO-8601 strings (naive means UTC), or numbers read as unix ms (seconds below 1e11).
  A timestamp that cannot be read is ignored (the next rule applies) rather than refused, and the process
  stage records an `INVALID_TIMESTAMP` warning for it (kaon.model.event_times).
- Attribute maps hold scalars: a nested object or array value becomes its JSON text. Identify traits
  that are lists of scalars stay lists (of strings), as user attribute lists.
- `context` fills mParticle's fields where it has them (ip, user agent, device, os version, app, screen,
  locale, time zone offset, carrier) and the batch's `context` with the rest: page, campaign, library,
  referrer, locale and time zone as sent, os name, and a non-identify call's `context.traits`, which are
  never user attributes (`kaon.model.segment_context`).
"""

import functools
import uuid
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from kaon.model.batch import ApplicationInfo, Batch, ConsentPurpose, ConsentState, DeviceInfo, SourceInfo
from kaon.model.event_times import event_time, to_ms
from kaon.model.events import (
    Alias,
    AliasData,
    CustomEvent,
    CustomEventData,
    Event,
    Group,
    GroupData,
    IdentityValue,
    ScreenView,
    ScreenViewData,
    UserAttributeChange,
    UserAttributeChangeData,
    UserIdentityChange,
    UserIdentityChangeData,
)
from kaon.model.segment_commerce import commerce_event, is_commerce, text
from kaon.model.segment_context import batch_context
from kaon.model.segment_wire import Call, Context, SegmentPayload, decode_segment, present
from kaon.model.values import AttrValue

__all__ = ["SegmentPayload", "decode_segment", "event_time", "flatten", "to_batches", "to_ms"]

_APPLE: Final = {"ios": "iOS", "ipados": "iOS", "iphoneos": "iOS", "tvos": "tvOS"}
_JS_LIBRARIES: Final = ("analytics.js", "analytics-next", "javascript", "rudder-sdk-js")
_NATIVE_LIBRARIES: Final = ("ios", "android", "swift", "kotlin", "react-native", "flutter", "xamarin")
_PAGE_FIELDS: Final = ("url", "path", "referrer", "title")


def to_batches(payload: SegmentPayload, received_ms: int, ip: str | None) -> list[Batch]:
    """Canonical batches for a decoded payload, one per call; `ip` (the client's) unless `context.ip`."""
    return [_batch(call, payload, received_ms, ip) for call in payload.calls]


def _batch(call: Call, payload: SegmentPayload, received_ms: int, ip: str | None) -> Batch:
    context = _merged(call.context, payload.context)
    sent_at = call.sent_at if call.sent_at is not None else payload.sent_at
    time = event_time(call.timestamp, call.original_timestamp, sent_at, received_ms)
    message_id = present(call.message_id) or str(uuid.uuid4())
    identities = _identities(call, context)
    # RudderStack's SDKs send identify traits only in `context.traits`; the call's own traits win.
    traits = {**(context.traits or {}), **(call.traits or {})} if call.type == "identify" else None
    attributes = _user_attributes(traits) if traits else {}
    platform = _platform(context)
    return Batch(
        events=_events(
            call, context=context, identities=identities, attributes=attributes, time=time,
            message_id=message_id,
        ),
        environment="production",
        ip=context.ip or ip,
        user_identities=identities,
        user_attributes=attributes,
        device_info=_device_info(context, platform, time),
        application_info=_application_info(context),
        consent_state=_consent(context, time),
        context=batch_context(context, call.type, flatten),
        mp_deviceid=present(call.anonymous_id),
        source_info=SourceInfo(channel=_channel(context, call.channel)),
        timestamp_unixtime_ms=received_ms,
    )


def _merged(own: Context | None, shared: Context | None) -> Context:
    """The call's context over the batch-level one, field by field (Segment merges the two)."""
    if own is None or shared is None:
        return own or shared or Context()
    fields = Context.__struct_fields__
    missing = {name: getattr(shared, name) for name in fields if getattr(own, name) is None}
    return msgspec.structs.replace(own, **missing)


def _identities(call: Call, context: Context) -> dict[str, str | None]:
    identities: dict[str, str | None] = {}
    user_id = present(call.user_id)
    if user_id is not None:
        identities["customer_id"] = user_id
    # A group call's `traits` describe the group, not the user.
    sources = [call.traits if call.type == "identify" else None, context.traits]
    for trait, identity in (("email", "email"), ("phone", "mobile_number")):
        for traits in sources:
            value = text(traits.get(trait)) if traits else None
            if value is not None:
                identities[identity] = value
                break
    return identities


def _events(
    call: Call,
    *,
    context: Context,
    identities: dict[str, str | None],
    attributes: dict[str, AttrValue],
    time: int,
    message_id: str,
) -> list[Event]:
    properties = call.properties or {}
    common: dict[str, Any] = {"timestamp_unixtime_ms": time, "source_message_id": message_id}
    kind = call.type
    if kind == "track":
        name = call.event or ""
        if is_commerce(name):
            return [commerce_event(name, properties, flatten, time, message_id)]
        data = CustomEventData(event_name=name, custom_attributes=flatten(properties), **common)
        return [CustomEvent(data=data)]
    if kind == "page":
        page = context.page
        attributes = dict(properties)
        for field in _PAGE_FIELDS:
            value = getattr(page, field) if page is not None else None
            if value is not None and field not in attributes:
                attributes[field] = value
        name = _page_name(call, context)
        screen = ScreenViewData(screen_name=name, custom_attributes=flatten(attributes), **common)
        return [ScreenView(data=screen)]
    if kind == "screen":
        name = call.name or call.category or "screen"
        screen = ScreenViewData(screen_name=name, custom_attributes=flatten(properties), **common)
        return [ScreenView(data=screen)]
    if kind == "group":
        group_id = present(call.group_id) or ""
        return [Group(data=GroupData(group_id=group_id, traits=flatten(call.traits or {}), **common))]
    if kind == "alias":
        # Segment's libraries send the current anonymousId as previousId when the caller gives none.
        previous_id = present(call.previous_id) or present(call.anonymous_id) or ""
        alias = AliasData(previous_id=previous_id, user_id=present(call.user_id), **common)
        return [Alias(data=alias)]
    return _identify_events(identities, attributes, time, message_id)


def _page_name(call: Call, context: Context) -> str:
    if call.name and call.category:
        return f"{call.category} {call.name}"
    path = context.page.path if context.page is not None else None
    return call.name or call.category or path or "page"


def _identify_events(
    identities: dict[str, str | None], attributes: dict[str, AttrValue], time: int, message_id: str
) -> list[Event]:
    events: list[Event] = []
    for kind, identity in identities.items():
        new = IdentityValue(identity_type=kind, identity=identity, timestamp_unixtime_ms=time)
        data = UserIdentityChangeData(
            new=new, timestamp_unixtime_ms=time, source_message_id=f"{message_id}:identity:{kind}"
        )
        events.append(UserIdentityChange(data=data))
    for name, value in attributes.items():
        change = UserAttributeChangeData(
            user_attribute_name=name,
            new=value,
            deleted=False,
            timestamp_unixtime_ms=time,
            source_message_id=f"{message_id}:attribute:{name}",
        )
        events.append(UserAttributeChange(data=change))
    return events


def flatten(values: dict[str, Any]) -> dict[str, AttrValue] | None:
    """An attribute map: scalars kept, nested objects and arrays as their JSON text; None when empty."""
    if not values:
        return None
    return {key: value if _is_scalar(value) else _json(value) for key, value in values.items()}


def _user_attributes(traits: dict[str, Any] | None) -> dict[str, AttrValue]:
    """Identify traits as user attributes: like `flatten`, but lists of scalars stay lists of strings."""
    attributes: dict[str, AttrValue] = {}
    for key, value in (traits or {}).items():
        if isinstance(value, list) and all(_is_scalar(item) and item is not None for item in value):
            attributes[key] = [item if isinstance(item, str) else _json(item) for item in value]
        else:
            attributes[key] = value if _is_scalar(value) else _json(value)
    return attributes


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _json(value: Any) -> str:
    try:
        return msgspec.json.encode(value).decode()
    except (RecursionError, msgspec.EncodeError, TypeError):  # unreachable for decoded JSON; be safe
        return str(value)


def _platform(context: Context) -> str | None:
    for name in (context.device.type if context.device else None, context.os.name if context.os else None):
        key = name.lower().replace(" ", "") if name else ""
        if key in _APPLE:
            return _APPLE[key]
        if key == "android":
            return "Android"
    library = (context.library.name or "").lower() if context.library else ""
    if context.page is not None or library in ("analytics.js", "analytics-next"):
        return "web"
    return None


def _device_info(context: Context, platform: str | None, time: int) -> DeviceInfo | None:
    device, os, screen = context.device, context.os, context.screen
    apple = platform in ("iOS", "tvOS")
    info = DeviceInfo(platform=platform, http_header_user_agent=context.user_agent)
    if device is not None:
        info.device_model = device.model
        info.device_manufacturer = device.manufacturer
        info.push_token = device.token or None
        if device.ad_tracking_enabled is not None:
            info.limit_ad_tracking = not device.ad_tracking_enabled
        if apple:
            info.ios_advertising_id, info.ios_idfv = device.advertising_id or None, present(device.id)
        else:
            info.android_advertising_id, info.android_uuid = device.advertising_id or None, present(device.id)
    if os is not None:
        info.os_version = present(os.version)
    if screen is not None:
        info.screen_width, info.screen_height = _pixels(screen.width), _pixels(screen.height)
    if context.network is not None:
        info.network_carrier = context.network.carrier or None
    if context.locale:
        language, _, country = context.locale.replace("_", "-").partition("-")
        info.locale_language, info.locale_country = language or None, country or None
    if context.timezone:
        info.timezone_offset, info.is_dst = _offset(context.timezone, time)
    return None if info == DeviceInfo() else info


def _pixels(value: int | float | None) -> int | None:
    return int(value) if value is not None and 0 <= value < 2**31 else None


def _offset(name: str, time: int) -> tuple[float | None, bool | None]:
    """The IANA zone's UTC offset in hours at `time`, and whether DST is in effect then."""
    zone = _zone(name)
    if zone is None:
        return None, None
    try:
        moment = datetime.fromtimestamp(time / 1000, tz=zone)
    except (ValueError, OverflowError, OSError):
        return None, None
    offset, dst = moment.utcoffset(), moment.dst()
    hours = offset.total_seconds() / 3600 if offset is not None else None
    return hours, (bool(dst) if dst is not None else None)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # unknown or malformed zone names (KeyError: not found)
        return None


def _application_info(context: Context) -> ApplicationInfo | None:
    app = context.app
    if app is None:
        return None
    return ApplicationInfo(
        application_name=app.name,
        application_version=present(app.version),
        application_build_number=present(app.build),
        package=app.namespace,
    )


def _consent(context: Context, time: int) -> ConsentState | None:
    preferences = context.consent.category_preferences if context.consent is not None else None
    if not preferences:
        return None
    gdpr = {
        category.lower(): ConsentPurpose(consented=consented, timestamp_unixtime_ms=time, document=None)
        for category, consented in preferences.items()
    }
    return ConsentState(gdpr=gdpr)


def _channel(context: Context, rudder_channel: str | None) -> str:
    """mParticle's source channel, guessed from the SDK's library name (or RudderStack's `channel`)."""
    library = (context.library.name or "").lower() if context.library is not None else ""
    if any(marker in library for marker in _JS_LIBRARIES):
        return "javascript"
    if any(marker in library for marker in _NATIVE_LIBRARIES):
        return "native"
    channel = (rudder_channel or "").lower()
    return {"web": "javascript", "mobile": "native"}.get(channel, "server_to_server")
