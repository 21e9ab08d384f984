"""The Segment-spec adapter: decoding and validation of /v1/<kind> bodies, and the mapping to batches."""

import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rudderstack.analytics.client import Client as RudderClient
from rudderstack.analytics.request import DatetimeSerializer as RudderJson
from segment.analytics.client import Client as SegmentClient
from segment.analytics.request import DatetimeSerializer as SegmentJson

from kaon.model.batch import Batch, ConsentPurpose
from kaon.model.errors import LimitExceeded, PayloadError
from kaon.model.events import (
    Alias,
    CommerceEvent,
    CommerceEventData,
    CustomEvent,
    Group,
    ScreenView,
    UserAttributeChange,
    UserIdentityChange,
)
from kaon.model.segment import SegmentPayload, decode_segment, to_batches
from kaon.model.segment_wire import MAX_BATCH_BYTES, MAX_EVENT_BYTES

RECEIVED = 1_700_000_000_000  # 2023-11-14T22:13:20Z
KINDS = ("track", "identify", "page", "screen", "group", "alias")


# --- builders ---------------------------------------------------------------------------------------


def a_call(kind: str = "track", **fields: Any) -> dict[str, Any]:
    """A valid call of `kind`; `fields` override (a value of None removes the field)."""
    call: dict[str, Any] = {"type": kind, "userId": "user-1", "messageId": "m-1"}
    call.update({"track": {"event": "Played"}, "group": {"groupId": "g-1"},
                 "alias": {"previousId": "old-1"}}.get(kind, {}))
    call.update(fields)
    return {key: value for key, value in call.items() if value is not None}


def a_body(*calls: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"batch": list(calls), **top}).encode()


def one_batch(call: dict[str, Any], received: int = RECEIVED, ip: str | None = None) -> Batch:
    """The single batch the single-call endpoint makes of `call`."""
    batches = to_batches(decode_segment(call["type"], json.dumps(call).encode()), received, ip)
    assert len(batches) == 1
    return batches[0]


def refusal(kind: str, body: bytes) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        decode_segment(kind, body)
    return caught.value


def commerce(event: str, **properties: Any) -> CommerceEventData:
    (event_,) = one_batch(a_call("track", event=event, properties=properties)).events
    assert isinstance(event_, CommerceEvent)
    return event_.data


# --- decoding -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_single_call_paths_imply_the_type(kind: str) -> None:
    call = a_call(kind, type=None)
    payload = decode_segment(kind, json.dumps(call).encode())
    assert [c.type for c in payload.calls] == [kind]


def test_a_type_that_disagrees_with_the_path_is_ignored() -> None:
    payload = decode_segment("track", json.dumps(a_call("track", type="identify")).encode())
    assert payload.calls[0].type == "track"


def test_batch_types_are_case_insensitive() -> None:
    payload = decode_segment("batch", a_body(a_call("track", type="Track"), a_call("page", type="PAGE")))
    assert [c.type for c in payload.calls] == ["track", "page"]


def test_write_key_comes_from_the_envelope_else_the_first_call() -> None:
    assert decode_segment("batch", a_body(a_call(writeKey="in-call"), writeKey="top")).write_key == "top"
    assert decode_segment("batch", a_body(a_call(writeKey="in-call"), a_call())).write_key == "in-call"
    assert decode_segment("batch", a_body(a_call())).write_key is None
    assert decode_segment("track", json.dumps(a_call(writeKey="k")).encode()).write_key == "k"


def test_batch_level_context_and_sent_at_are_kept() -> None:
    body = a_body(a_call(), context={"ip": "9.9.9.9"}, sentAt="2023-11-14T22:13:20Z")
    payload = decode_segment("batch", body)
    assert payload.context is not None and payload.context.ip == "9.9.9.9"
    assert payload.sent_at == "2023-11-14T22:13:20Z"


def test_numeric_ids_are_accepted_as_strings() -> None:
    batch = one_batch(a_call("identify", userId=42, anonymousId=7.0, messageId=3))
    assert batch.user_identities["customer_id"] == "42"
    assert batch.mp_deviceid == "7"
    assert batch.events[0].data.source_message_id == "3:identity:customer_id"


def test_unknown_path_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="nope"):
        decode_segment("nope", b"{}")


# --- validation errors ----------------------------------------------------------------------------------


def test_malformed_json_is_invalid_json() -> None:
    assert refusal("batch", b'{"batch": [').code == "INVALID_JSON"
    assert refusal("track", b"\xff\xfe").code == "INVALID_JSON"


def test_too_deep_nesting_is_refused_not_crashed() -> None:
    nested = b"[" * 5_000 + b"]" * 5_000
    deep = b'{"type":"track","event":"e","userId":"u","properties":{"a":' + nested + b"}}"
    assert refusal("track", deep).code == "INVALID_JSON"


def test_a_batch_body_must_be_an_object_with_a_batch_array() -> None:
    error = refusal("batch", b"[]")
    assert (error.code, error.message) == ("INVALID_SHAPE", "Expected `object`, got `array` - at `$`")
    error = refusal("batch", b"{}")
    assert error.code == "INVALID_SHAPE" and "`batch`" in error.message


def test_an_empty_batch_is_invalid() -> None:
    error = refusal("batch", a_body())
    assert (error.code, error.message) == ("INVALID_SHAPE", "`batch` must not be empty - at `$.batch`")


def test_a_wrongly_typed_field_is_located_inside_the_batch() -> None:
    error = refusal("batch", a_body(a_call(), a_call(context={"device": "phone"})))
    assert error.code == "INVALID_SHAPE"
    assert error.message == "Expected `object | null`, got `str` - at `$.batch[1].context.device`"
    error = refusal("batch", a_body(a_call(), 5))  # type: ignore[arg-type]
    assert error.message == "Expected `object`, got `int` - at `$.batch[1]`"


def test_a_batch_call_needs_a_known_type() -> None:
    error = refusal("batch", a_body(a_call(type=None)))
    assert (error.code, error.message) == ("INVALID_SHAPE", "`type` is required - at `$.batch[0]`")
    error = refusal("batch", a_body(a_call(type="trak")))
    assert error.code == "INVALID_SHAPE" and error.message.endswith("- at `$.batch[0].type`")


def test_track_needs_an_event() -> None:
    body = a_body(a_call(), a_call(), a_call(), a_call(event=None))
    error = refusal("batch", body)
    assert (error.code, error.message) == ("INVALID_SHAPE", "`event` is required - at `$.batch[3]`")
    error = refusal("track", json.dumps(a_call(event="  ")).encode())
    assert (error.code, error.message) == ("INVALID_SHAPE", "`event` must not be empty - at `$.event`")


@pytest.mark.parametrize("kind", ["track", "identify", "page", "screen"])
def test_calls_about_a_user_need_user_id_or_anonymous_id(kind: str) -> None:
    error = refusal(kind, json.dumps(a_call(kind, userId="")).encode())
    assert (error.code, error.message) == ("INVALID_SHAPE", "`userId` or `anonymousId` is required - at `$`")
    assert decode_segment(kind, json.dumps(a_call(kind, userId=None, anonymousId="a")).encode())


def test_group_needs_a_group_id() -> None:
    error = refusal("group", json.dumps(a_call("group", groupId=None)).encode())
    assert (error.code, error.message) == ("INVALID_SHAPE", "`groupId` is required - at `$`")


def test_alias_needs_previous_id_or_anonymous_id_and_user_id() -> None:
    error = refusal("batch", a_body(a_call("alias", previousId=None)))
    assert (error.code, error.message) == (
        "INVALID_SHAPE", "`previousId` (or `anonymousId`, its default) is required - at `$.batch[0]`")
    assert decode_segment("batch", a_body(a_call("alias", previousId=None, anonymousId="anon-1")))
    error = refusal("alias", json.dumps(a_call("alias", userId=None, anonymousId="a")).encode())
    assert (error.code, error.message) == ("INVALID_SHAPE", "`userId` is required - at `$`")


# --- limits -----------------------------------------------------------------------------------------


def padded(call: dict[str, Any], size: int) -> dict[str, Any]:
    """`call` with a property padding its JSON to exactly `size` bytes."""
    call = {**call, "properties": {"pad": ""}}
    call["properties"]["pad"] = "x" * (size - len(json.dumps(call, separators=(",", ":"))))
    assert len(json.dumps(call, separators=(",", ":"))) == size
    return call


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def test_a_single_call_of_32_kb_passes_and_one_byte_more_is_refused() -> None:
    assert decode_segment("track", compact(padded(a_call(), MAX_EVENT_BYTES)))
    with pytest.raises(LimitExceeded) as caught:
        decode_segment("track", compact(padded(a_call(), MAX_EVENT_BYTES + 1)))
    error = caught.value
    assert (error.code, error.status) == ("EVENT_TOO_LARGE", 400)
    assert "32768 bytes" in error.message and error.message.endswith("- at `$`")


def test_a_call_over_32_kb_inside_a_batch_is_refused_with_its_path() -> None:
    body = compact({"batch": [a_call(), padded(a_call(), MAX_EVENT_BYTES)]})
    assert len(decode_segment("batch", body).calls) == 2
    body = compact({"batch": [a_call(), padded(a_call(), MAX_EVENT_BYTES + 1)]})
    with pytest.raises(LimitExceeded) as caught:
        decode_segment("batch", body)
    assert (caught.value.code, caught.value.status) == ("EVENT_TOO_LARGE", 400)
    assert caught.value.message.endswith("- at `$.batch[1]`")


def test_a_batch_over_500_kb_is_refused_with_413() -> None:
    call = compact(padded(a_call(), 20_000))
    count = MAX_BATCH_BYTES // (len(call) + 1)
    head = b'{"batch":[' + b",".join([call] * count) + b"]"
    fits = head + b',"x":"' + b"y" * (MAX_BATCH_BYTES - len(head) - 8) + b'"}'
    assert len(fits) == MAX_BATCH_BYTES
    assert len(decode_segment("batch", fits).calls) == count
    too_big = fits[:-2] + b'y"}'
    with pytest.raises(LimitExceeded) as caught:
        decode_segment("batch", too_big)
    assert (caught.value.code, caught.value.status) == ("BATCH_TOO_LARGE", 413)
    assert str(MAX_BATCH_BYTES) in caught.value.message


# --- mapping: identities, device, application -------------------------------------------------------


def test_user_id_anonymous_id_and_trait_identities() -> None:
    call = a_call(anonymousId="anon-1", context={"traits": {"email": "a@b.c", "phone": 3161234}})
    batch = one_batch(call)
    assert batch.user_identities == {"customer_id": "user-1", "email": "a@b.c", "mobile_number": "3161234"}
    assert batch.mp_deviceid == "anon-1"


def test_identify_traits_win_over_context_traits_but_group_traits_are_not_the_user() -> None:
    call = a_call("identify", traits={"email": "new@b.c"}, context={"traits": {"email": "old@b.c"}})
    assert one_batch(call).user_identities["email"] == "new@b.c"
    assert "email" not in one_batch(a_call("group", traits={"email": "team@b.c"})).user_identities


def test_ios_device() -> None:
    context = {
        "device": {"type": "ios", "advertisingId": "IDFA", "id": "IDFV", "token": "push",
                   "model": "iPhone15,2", "manufacturer": "Apple", "adTrackingEnabled": True},
        "os": {"name": "iOS", "version": "17.1"},
        "screen": {"width": 390, "height": 844},
        "locale": "nl-NL", "timezone": "Europe/Amsterdam", "userAgent": "UA",
        "app": {"name": "Shop", "version": "1.2", "build": 34, "namespace": "com.example.shop"},
    }
    batch = one_batch(a_call(context=context))
    device = batch.device_info
    assert device is not None
    assert (device.platform, device.ios_advertising_id, device.ios_idfv) == ("iOS", "IDFA", "IDFV")
    assert device.android_advertising_id is None and device.android_uuid is None
    assert (device.push_token, device.device_model, device.device_manufacturer) == (
        "push", "iPhone15,2", "Apple")
    assert (device.os_version, device.locale_language, device.locale_country) == ("17.1", "nl", "NL")
    assert (device.screen_width, device.screen_height, device.limit_ad_tracking) == (390, 844, False)
    assert device.http_header_user_agent == "UA"
    assert (device.timezone_offset, device.is_dst) == (1.0, False)  # CET in November
    app = batch.application_info
    assert app is not None
    assert (app.application_name, app.application_version, app.application_build_number, app.package) == (
        "Shop", "1.2", "34", "com.example.shop")


def test_android_device_by_os_name() -> None:
    context = {"device": {"advertisingId": "AAID", "id": "UUID"}, "os": {"name": "Android", "version": 14}}
    device = one_batch(a_call(context=context)).device_info
    assert device is not None
    assert (device.platform, device.android_advertising_id, device.android_uuid) == (
        "Android", "AAID", "UUID")
    assert device.ios_advertising_id is None and device.os_version == "14"


@pytest.mark.parametrize("context", [{"page": {"path": "/"}}, {"library": {"name": "analytics.js"}}])
def test_web_platform(context: dict[str, Any]) -> None:
    device = one_batch(a_call(context=context)).device_info
    assert device is not None and device.platform == "web"


def test_no_device_context_means_no_device_info() -> None:
    batch = one_batch(a_call())
    assert batch.device_info is None and batch.application_info is None and batch.consent_state is None


def test_unknown_timezone_is_ignored() -> None:
    device = one_batch(a_call(context={"timezone": "Mars/Olympus", "locale": "en"})).device_info
    assert device is not None
    assert (device.timezone_offset, device.locale_language, device.locale_country) == (None, "en", None)


def test_ip_from_context_else_from_the_request() -> None:
    assert one_batch(a_call(context={"ip": "1.1.1.1"}), ip="2.2.2.2").ip == "1.1.1.1"
    assert one_batch(a_call(), ip="2.2.2.2").ip == "2.2.2.2"


def test_batch_context_is_merged_under_each_calls_context() -> None:
    body = a_body(
        a_call(context={"ip": "1.1.1.1"}),
        a_call(),
        context={"ip": "9.9.9.9", "os": {"name": "Android"}},
    )
    first, second = to_batches(decode_segment("batch", body), RECEIVED, None)
    assert (first.ip, second.ip) == ("1.1.1.1", "9.9.9.9")
    assert first.device_info is not None and first.device_info.platform == "Android"


def test_consent_category_preferences() -> None:
    call = a_call(timestamp="2023-11-14T22:00:00Z",
                  context={"consent": {"categoryPreferences": {"Advertising": True, "Analytics": False}}})
    consent = one_batch(call).consent_state
    assert consent is not None
    at = 1_699_999_200_000
    assert consent.gdpr == {
        "advertising": ConsentPurpose(consented=True, timestamp_unixtime_ms=at, document=None),
        "analytics": ConsentPurpose(consented=False, timestamp_unixtime_ms=at, document=None),
    }


@pytest.mark.parametrize(("library", "channel"), [
    ("analytics.js", "javascript"),
    ("analytics-next", "javascript"),
    ("RudderLabs JavaScript SDK", "javascript"),
    ("analytics-ios", "native"),
    ("analytics-android", "native"),
    ("com.rudderstack.android.sdk.core", "native"),
    ("rudder-ios-library", "native"),
    ("analytics-python", "server_to_server"),
    ("rudder-analytics-python", "server_to_server"),
    (None, "server_to_server"),
])
def test_environment_and_channel(library: str | None, channel: str) -> None:
    context = {"library": {"name": library}} if library else {}
    batch = one_batch(a_call(context=context))
    assert batch.environment == "production"
    assert batch.source_info is not None and batch.source_info.channel == channel


# --- mapping: time and message ids ------------------------------------------------------------------


def event_ms(**fields: Any) -> int | None:
    return one_batch(a_call(**fields)).events[0].data.timestamp_unixtime_ms


def test_timestamp_is_the_event_time() -> None:
    assert event_ms(timestamp="2023-11-14T22:00:00.250+01:00") == 1_699_995_600_250
    assert event_ms(timestamp="2023-11-14T22:00:00") == 1_699_999_200_000  # naive is UTC


def test_original_timestamp_is_corrected_for_clock_skew_with_sent_at() -> None:
    # The client's clock is 1 h behind: it sent at 21:13:20 its time, 5 s after the event.
    fields = {"originalTimestamp": "2023-11-14T21:13:15Z", "sentAt": "2023-11-14T21:13:20Z"}
    assert event_ms(**fields) == RECEIVED - 5_000
    assert event_ms(**fields, timestamp="2023-11-14T00:00:00Z") == 1_699_920_000_000


def test_batch_level_sent_at_corrects_skew() -> None:
    body = a_body(a_call(originalTimestamp="2023-11-14T21:13:15Z"), sentAt="2023-11-14T21:13:20Z")
    (batch,) = to_batches(decode_segment("batch", body), RECEIVED, None)
    assert batch.events[0].data.timestamp_unixtime_ms == RECEIVED - 5_000


def test_original_timestamp_without_sent_at_is_taken_as_is() -> None:
    assert event_ms(originalTimestamp="2023-11-14T21:13:15Z") == RECEIVED - 3_605_000


def test_no_or_unreadable_timestamps_fall_back_to_the_receive_time() -> None:
    assert event_ms() == RECEIVED
    assert event_ms(timestamp="yesterday") == RECEIVED
    assert event_ms(timestamp="0001-01-01T00:00:00+01:00") == RECEIVED
    assert event_ms(originalTimestamp="soon", sentAt="2023-11-14T21:13:20Z") == RECEIVED
    assert event_ms(timestamp="garbage", originalTimestamp="2023-11-14T21:13:15Z") == RECEIVED - 3_605_000


def test_numeric_timestamps_are_unix_ms_or_seconds() -> None:
    assert event_ms(timestamp=1_699_999_000_123) == 1_699_999_000_123
    assert event_ms(timestamp=1_699_999_000.5) == 1_699_999_000_500


def test_the_batch_timestamp_is_the_receive_time() -> None:
    assert one_batch(a_call(timestamp="2023-11-14T00:00:00Z")).timestamp_unixtime_ms == RECEIVED


def test_message_id_is_the_source_message_id_or_a_fresh_uuid4() -> None:
    assert one_batch(a_call(messageId="abc")).events[0].data.source_message_id == "abc"
    generated = one_batch(a_call(messageId=None)).events[0].data.source_message_id
    assert generated is not None and uuid.UUID(generated).version == 4


# --- mapping: call types ------------------------------------------------------------------------------


def test_track_is_a_custom_event_with_flattened_properties() -> None:
    properties = {"plan": "pro", "seats": 3, "ratio": 0.5, "trial": False, "none": None,
                  "tags": ["a", 1], "meta": {"k": {"n": 1}}}
    (event,) = one_batch(a_call(event="Signed Up", properties=properties)).events
    assert isinstance(event, CustomEvent)
    assert (event.data.event_name, event.data.custom_event_type) == ("Signed Up", "other")
    assert event.data.custom_attributes == {
        "plan": "pro", "seats": 3, "ratio": 0.5, "trial": False, "none": None,
        "tags": '["a",1]', "meta": '{"k":{"n":1}}',
    }


def test_track_without_properties_has_no_attributes() -> None:
    (event,) = one_batch(a_call(event="Played")).events
    assert isinstance(event, CustomEvent) and event.data.custom_attributes is None


@pytest.mark.parametrize(("call", "screen_name"), [
    ({"name": "Pricing"}, "Pricing"),
    ({"name": "Pricing", "category": "Docs"}, "Docs Pricing"),
    ({"context": {"page": {"path": "/pricing"}}}, "/pricing"),
    ({}, "page"),
])
def test_page_screen_name(call: dict[str, Any], screen_name: str) -> None:
    (event,) = one_batch(a_call("page", **call)).events
    assert isinstance(event, ScreenView) and event.data.screen_name == screen_name


def test_page_attributes_take_missing_url_fields_from_context_page() -> None:
    page = {"url": "https://x/p", "path": "/p", "referrer": "https://r", "title": "P", "search": "?q"}
    call = a_call("page", name="P", properties={"path": "/own", "n": 1}, context={"page": page})
    (event,) = one_batch(call).events
    assert event.data.custom_attributes == {
        "path": "/own", "n": 1, "url": "https://x/p", "referrer": "https://r", "title": "P"}


def test_screen_is_a_screen_view() -> None:
    (event,) = one_batch(a_call("screen", name="Home", properties={"tab": "feed"})).events
    assert isinstance(event, ScreenView)
    assert (event.data.screen_name, event.data.custom_attributes) == ("Home", {"tab": "feed"})


def test_identify_sets_identities_and_attributes_and_records_changes() -> None:
    traits = {"email": "a@b.c", "plan": "pro", "age": 40, "tags": ["x", 2, True], "address": {"city": "A"}}
    batch = one_batch(a_call("identify", messageId="m", traits=traits, timestamp="2023-11-14T22:00:00Z"))
    assert batch.user_identities == {"customer_id": "user-1", "email": "a@b.c"}
    assert batch.user_attributes == {"email": "a@b.c", "plan": "pro", "age": 40,
                                     "tags": ["x", "2", "true"], "address": '{"city":"A"}'}
    identity_events = [e for e in batch.events if isinstance(e, UserIdentityChange)]
    assert [(e.data.new.identity_type, e.data.new.identity, e.data.source_message_id)
            for e in identity_events if e.data.new] == [
        ("customer_id", "user-1", "m:identity:customer_id"), ("email", "a@b.c", "m:identity:email")]
    changes = [e.data for e in batch.events if isinstance(e, UserAttributeChange)]
    assert [(c.user_attribute_name, c.new, c.deleted, c.source_message_id) for c in changes] == [
        ("email", "a@b.c", False, "m:attribute:email"), ("plan", "pro", False, "m:attribute:plan"),
        ("age", 40, False, "m:attribute:age"), ("tags", ["x", "2", "true"], False, "m:attribute:tags"),
        ("address", '{"city":"A"}', False, "m:attribute:address")]
    assert {e.data.timestamp_unixtime_ms for e in batch.events} == {1_699_999_200_000}
    assert len(batch.events) == len(identity_events) + len(changes)


def test_only_identify_sets_user_attributes() -> None:
    assert one_batch(a_call("track", traits={"plan": "pro"})).user_attributes == {}


def test_group() -> None:
    (event,) = one_batch(a_call("group", groupId=12, traits={"name": "Acme", "tags": ["b2b"]})).events
    assert isinstance(event, Group)
    assert (event.data.group_id, event.data.traits) == ("12", {"name": "Acme", "tags": '["b2b"]'})


def test_alias() -> None:
    batch = one_batch(a_call("alias", previousId="anon-9", userId="user-9"))
    (event,) = batch.events
    assert isinstance(event, Alias)
    assert (event.data.previous_id, event.data.user_id) == ("anon-9", "user-9")
    assert batch.user_identities == {"customer_id": "user-9"}


def test_alias_previous_id_defaults_to_the_anonymous_id() -> None:
    # Segment's spec: analytics.alias(userId) sends the current anonymousId as previousId.
    batch = one_batch(a_call("alias", previousId=None, anonymousId="anon-7", userId="user-7"))
    (event,) = batch.events
    assert isinstance(event, Alias)
    assert (event.data.previous_id, event.data.user_id) == ("anon-7", "user-7")
    assert batch.mp_deviceid == "anon-7"
    # A previousId given wins over the anonymousId.
    (event,) = one_batch(a_call("alias", previousId="old-7", anonymousId="anon-7")).events
    assert isinstance(event, Alias) and event.data.previous_id == "old-7"


# --- mapping: e-commerce ------------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "action"), [
    ("Order Completed", "purchase"),
    ("Order Refunded", "refund"),
    ("Product Added", "add_to_cart"),
    ("Product Removed", "remove_from_cart"),
    ("Checkout Started", "checkout"),
    ("Checkout Step Viewed", "checkout"),
    ("Checkout Step Completed", "checkout"),
    ("Payment Info Entered", "checkout_option"),
    ("Product Viewed", "view_detail"),
    ("Product Clicked", "click"),
    ("Product Added to Wishlist", "add_to_wishlist"),
    ("Product Removed from Wishlist", "remove_from_wish_list"),
    ("order completed", "purchase"),
])
def test_product_action_events(event: str, action: str) -> None:
    data = commerce(event, note="kept")
    assert data.product_action is not None and data.product_action.action == action
    assert data.event_name == event and data.custom_attributes == {"note": "kept"}


@pytest.mark.parametrize(("event", "action"), [("Promotion Viewed", "view"), ("Promotion Clicked", "click")])
def test_promotion_events(event: str, action: str) -> None:
    data = commerce(event, promotion_id="promo-1", name="Sale", creative="banner", position=2)
    assert data.promotion_action is not None and data.promotion_action.action == action
    promotion = data.promotion_action.promotions[0] if data.promotion_action.promotions else None
    assert promotion is not None
    assert (promotion.id, promotion.name, promotion.creative, promotion.position) == (
        "promo-1", "Sale", "banner", "2")
    assert data.event_name == event and data.product_action is None and data.custom_attributes is None


def test_order_completed_maps_order_fields_and_products() -> None:
    data = commerce(
        "Order Completed", order_id="o-1", affiliation="Store", total=27.5, revenue=25, tax=2, shipping=3,
        coupon="HALF", currency="EUR", note="gift",
        products=[{"product_id": "p-1", "sku": "S-1", "name": "Mug", "brand": "B", "category": "Home",
                   "variant": "red", "price": 12.5, "quantity": 2, "position": 1, "coupon": "C",
                   "url": "https://x/mug", "image": {"w": 1}},
                  {"sku": "S-2", "price": "2.5"}],
    )
    action = data.product_action
    assert action is not None and action.products is not None
    assert (action.transaction_id, action.affiliation, action.total_amount, action.tax_amount,
            action.shipping_amount, action.coupon_code) == ("o-1", "Store", 27.5, 2.0, 3.0, "HALF")
    assert data.currency_code == "EUR"
    assert data.custom_attributes == {"revenue": 25, "note": "gift"}
    first, second = action.products
    assert (first.id, first.name, first.brand, first.category, first.variant, first.price, first.quantity,
            first.position, first.coupon_code) == ("p-1", "Mug", "B", "Home", "red", 12.5, 2.0, 1, "C")
    assert first.custom_attributes == {"sku": "S-1", "url": "https://x/mug", "image": '{"w":1}'}
    assert (second.id, second.price, second.custom_attributes) == ("S-2", 2.5, None)


def test_revenue_is_the_total_when_no_total_and_checkout_id_the_transaction() -> None:
    data = commerce("Order Refunded", checkout_id="c-1", revenue=10)
    assert data.product_action is not None
    assert (data.product_action.transaction_id, data.product_action.total_amount) == ("c-1", 10.0)


def test_single_product_fields_sit_at_the_top_of_properties() -> None:
    data = commerce("Product Added", cart_id="cart-1", product_id="p-1", name="Mug", price=3, quantity=1)
    action = data.product_action
    assert action is not None and action.products is not None
    (product,) = action.products
    assert (product.id, product.name, product.price, product.quantity) == ("p-1", "Mug", 3.0, 1.0)
    assert data.custom_attributes == {"cart_id": "cart-1"}


def test_an_unconvertible_commerce_value_stays_an_attribute() -> None:
    data = commerce("Product Viewed", product_id="p-1", price="free")
    assert data.product_action is not None and data.product_action.products is not None
    assert data.product_action.products[0].price is None
    assert data.custom_attributes == {"price": "free"}


@pytest.mark.parametrize("event", ["Checkout Step Viewed", "Checkout Step Completed", "Payment Info Entered"])
def test_checkout_step_and_options(event: str) -> None:
    data = commerce(event, checkout_id="c-1", step=2, payment_method="Visa")
    action = data.product_action
    assert action is not None
    assert (action.checkout_step, action.checkout_options, action.transaction_id) == (2, "Visa", "c-1")


def test_product_list_viewed_is_an_impression() -> None:
    data = commerce("Product List Viewed", list_id="hot", category="Deals",
                    products=[{"product_id": "p-1"}, {"product_id": "p-2"}])
    assert data.product_action is None and data.product_impressions is not None
    (impression,) = data.product_impressions
    assert impression.product_impression_list == "hot"
    assert [p.id for p in impression.products or []] == ["p-1", "p-2"]
    assert data.custom_attributes == {"category": "Deals"}


# --- real SDKs ---------------------------------------------------------------------------------------


def test_segment_python_sdk_payload() -> None:
    client = SegmentClient("wk", send=False, sync_mode=True)
    _, identify = client.identify("u-1", {"email": "a@b.c"}, anonymous_id="an-1")
    _, track = client.track("u-1", "Order Completed", {"order_id": "o-1", "total": 5})
    body = json.dumps({"batch": [identify, track], "sentAt": "2023-11-14T22:13:20Z", "writeKey": "wk"},
                      cls=SegmentJson).encode()
    payload = decode_segment("batch", body)
    assert payload.write_key == "wk"
    identified, tracked = to_batches(payload, RECEIVED, "3.3.3.3")
    assert identified.user_identities == {"customer_id": "u-1", "email": "a@b.c"}
    assert identified.mp_deviceid == "an-1"
    assert isinstance(tracked.events[0], CommerceEvent)
    assert tracked.source_info is not None and tracked.source_info.channel == "server_to_server"


def test_rudderstack_python_sdk_payload_with_its_extra_fields() -> None:
    client = RudderClient("wk", send=False, sync_mode=True)
    _, message = client.track("u-1", "Played", {"song": "x"}, anonymous_id="an-1")
    message["rudderId"] = "r-1"
    assert message["channel"] == "server"
    body = json.dumps({"batch": [message], "sentAt": "2023-11-14T22:13:20Z"}, cls=RudderJson).encode()
    (batch,) = to_batches(decode_segment("batch", body), RECEIVED, None)
    (event,) = batch.events
    assert isinstance(event, CustomEvent) and event.data.event_name == "Played"
    assert event.data.source_message_id == message["messageId"]


def test_rudderstack_mobile_channel_means_native_without_a_known_library() -> None:
    batch = one_batch(a_call(channel="mobile", context={"library": {"name": "some-sdk"}}))
    assert batch.source_info is not None and batch.source_info.channel == "native"


# --- properties ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Values for the fields a call has, either well-typed or any JSON, so that many generated calls decode.
loose_ids = st.none() | st.text(max_size=6) | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
timestamps = st.none() | st.datetimes().map(lambda d: d.isoformat()) | st.integers() | st.text(max_size=12)
objects = st.dictionaries(st.sampled_from(["email", "phone", "products", "price", "step", "total", "name",
                                           "product_id", "order_id", "x"]), json_values, max_size=5)
contexts = st.fixed_dictionaries({}, optional={
    "device": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["ios", "android", "tv"]),
                                                  "id": loose_ids, "advertisingId": st.text(max_size=4),
                                                  "token": st.text(max_size=4)}),
    "os": st.fixed_dictionaries({}, optional={"name": st.text(max_size=8), "version": loose_ids}),
    "app": st.fixed_dictionaries({}, optional={"build": loose_ids, "namespace": st.text(max_size=4)}),
    "screen": st.fixed_dictionaries({}, optional={"width": st.integers() | st.floats(allow_nan=False)}),
    "page": st.fixed_dictionaries({}, optional={"path": st.text(max_size=4)}),
    "library": st.fixed_dictionaries({}, optional={"name": st.text(max_size=12)}),
    "locale": st.text(max_size=6),
    "timezone": st.sampled_from(["Europe/Amsterdam", "UTC", "", "../etc", "Nope/Zone", "\x00"]) | st.text(),
    "traits": objects,
    "consent": st.fixed_dictionaries(
        {"categoryPreferences": st.dictionaries(st.text(max_size=5), st.booleans())}
    ),
    "ip": st.text(max_size=6),
    "extra": json_values,
})
calls = st.fixed_dictionaries(
    {"type": st.sampled_from(KINDS), "userId": loose_ids, "anonymousId": loose_ids},
    optional={
        "event": st.sampled_from([
            "Order Completed", "Product Added", "Promotion Viewed", "Product List Viewed",
            "Checkout Step Viewed", "x", "",
        ]) | st.text(max_size=6),
        "messageId": loose_ids, "timestamp": timestamps, "originalTimestamp": timestamps,
        "sentAt": timestamps, "groupId": loose_ids, "previousId": loose_ids, "name": st.text(max_size=4),
        "category": st.text(max_size=4), "properties": objects, "traits": objects, "context": contexts,
        "integrations": st.dictionaries(st.text(max_size=4), json_values, max_size=2),
        "rudderId": json_values, "channel": st.sampled_from(["web", "mobile", "server"]),
        "extra": json_values,
    },
)
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def decodes_or_refuses(kind: str, body: bytes) -> SegmentPayload | None:
    try:
        return decode_segment(kind, body)
    except PayloadError as error:
        assert error.code in {"INVALID_JSON", "INVALID_SHAPE", "EVENT_TOO_LARGE", "BATCH_TOO_LARGE",
                              "INTEGER_OUT_OF_RANGE"}
        assert " - at `$" in error.message or error.code == "INVALID_JSON"
        return None


def maps_and_round_trips(payload: SegmentPayload) -> None:
    batches = to_batches(payload, RECEIVED, "127.0.0.1")
    assert len(batches) == len(payload.calls)
    for batch in batches:
        encoded = msgspec.json.encode(batch)
        assert msgspec.json.encode(msgspec.json.decode(encoded, type=Batch)) == encoded


@FUZZ
@given(kind=st.sampled_from(("batch", *KINDS)), value=json_values)
def test_any_json_is_decoded_or_refused(kind: str, value: Any) -> None:
    payload = decodes_or_refuses(kind, json.dumps(value).encode())
    if payload is not None:
        maps_and_round_trips(payload)


@FUZZ
@given(kind=st.sampled_from(("batch", *KINDS)), body=st.binary(max_size=200))
def test_any_bytes_are_decoded_or_refused(kind: str, body: bytes) -> None:
    payload = decodes_or_refuses(kind, body)
    if payload is not None:
        maps_and_round_trips(payload)


@FUZZ
@given(batch=st.lists(calls, max_size=4), top=st.fixed_dictionaries(
    {}, optional={"context": contexts, "sentAt": timestamps, "writeKey": st.text(max_size=3)}))
def test_any_call_shaped_batch_is_refused_or_maps_to_round_tripping_batches(
    batch: list[dict[str, Any]], top: dict[str, Any]
) -> None:
    payload = decodes_or_refuses("batch", json.dumps({"batch": batch, **top}).encode())
    if payload is not None:
        maps_and_round_trips(payload)


@FUZZ
@given(call=calls)
def test_any_single_call_is_refused_or_maps_to_a_round_tripping_batch(call: dict[str, Any]) -> None:
    payload = decodes_or_refuses(call["type"], json.dumps(call).encode())
    if payload is not None:
        maps_and_round_trips(payload)


def test_generated_calls_mostly_decode() -> None:
    """Guard for the properties above: they would prove little if nearly every generated call were refused."""
    decoded = 0

    @settings(max_examples=200, deadline=None, database=None)
    @given(call=calls)
    def count(call: dict[str, Any]) -> None:
        nonlocal decoded
        if decodes_or_refuses(call["type"], json.dumps(call).encode()) is not None:
            decoded += 1

    count()
    assert decoded >= 40
