"""Segment's `context` in the canonical batch: page, campaign, library, ... kept typed; context.traits' rule."""

import json
from typing import Any

import msgspec
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from kaon.model.batch import Batch, BatchContext
from kaon.model.context import CampaignContext, LibraryContext, PageContext, ReferrerContext
from kaon.model.events import Location
from kaon.model.segment import decode_segment, to_batches

RECEIVED = 1_700_000_000_000
WEB_CONTEXT: dict[str, Any] = {
    "page": {"url": "https://shop.example/p?utm_source=news", "path": "/p", "referrer": "https://news.example/",
             "title": "Shoes", "search": "?utm_source=news", "initial_referrer": "ignored"},
    "campaign": {"name": "spring", "source": "news", "medium": "email", "term": "shoes", "content": "hero",
                 "adgroup": "a-7", "id": 42, "nested": {"x": 1}},
    "ip": "198.51.100.4",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "locale": "de-DE",
    "timezone": "Europe/Berlin",
    "library": {"name": "analytics.js", "version": "next-1.70.0"},
    "os": {"name": "Mac OS X", "version": "10.15.7"},
    "screen": {"width": 1440, "height": 900, "density": 2},
    "network": {"carrier": "T-Mobile", "wifi": True},
    "location": {"city": "Berlin", "country": "DE", "region": "BE", "latitude": 52.52, "longitude": 13.4},
    "referrer": {"type": "dataxu", "id": "ref-1", "link": "https://ad.example/x"},
    "traits": {"email": "ann@example.com", "plan": "pro", "tags": ["a", "b"]},
}


def one_batch(call: dict[str, Any]) -> Batch:
    [batch] = to_batches(decode_segment(call["type"], json.dumps(call).encode()), RECEIVED, "192.0.2.1")
    return batch


def a_call(kind: str, context: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": kind, "userId": "u-1", "messageId": "m-1", "context": context or WEB_CONTEXT,
                            **{"track": {"event": "Clicked"}}.get(kind, {}), **fields}
    return call


def test_web_context_is_kept_typed_on_a_track_call() -> None:
    batch = one_batch(a_call("track"))
    assert batch.context == BatchContext(
        page=PageContext(url="https://shop.example/p?utm_source=news", path="/p", referrer="https://news.example/",
                         title="Shoes", search="?utm_source=news"),
        campaign=CampaignContext(name="spring", source="news", medium="email", term="shoes", content="hero",
                                 other={"adgroup": "a-7", "id": "42"}),
        library=LibraryContext(name="analytics.js", version="next-1.70.0"),
        referrer=ReferrerContext(type="dataxu", id="ref-1", link="https://ad.example/x"),
        location=Location(latitude=52.52, longitude=13.4, city_name="Berlin", country_code="DE", region_code="BE"),
        locale="de-DE", timezone="Europe/Berlin", os_name="Mac OS X",
        traits={"email": "ann@example.com", "plan": "pro", "tags": '["a","b"]'},
    )
    # What mParticle's batch has a field for goes there, once.
    assert batch.ip == "198.51.100.4"
    info = batch.device_info
    assert info is not None
    assert (info.http_header_user_agent, info.os_version, info.screen_width, info.screen_height) == (
        WEB_CONTEXT["userAgent"], "10.15.7", 1440, 900)
    assert (info.locale_language, info.locale_country, info.network_carrier, info.platform) == (
        "de", "DE", "T-Mobile", "web")


def test_the_page_is_kept_on_every_call_type() -> None:
    for kind, fields in (("track", {}), ("page", {"name": "Home"}), ("screen", {"name": "Home"}),
                         ("identify", {}), ("group", {"groupId": "g-1"}), ("alias", {"previousId": "old"})):
        batch = one_batch(a_call(kind, **fields))
        assert batch.context is not None and batch.context.page is not None, kind
        assert batch.context.page.url == "https://shop.example/p?utm_source=news", kind


def test_context_traits_of_a_track_call_never_become_user_attributes() -> None:
    """Segment: context.traits on track/page reach destinations but do not update the profile."""
    for kind in ("track", "page", "screen"):
        batch = one_batch(a_call(kind, name="Home") if kind != "track" else a_call(kind))
        assert batch.user_attributes == {}, kind
        assert [e.event_type for e in batch.events] != ["user_attribute_change"]
        assert batch.context is not None and batch.context.traits is not None
        assert batch.context.traits["plan"] == "pro"
        # The email is an identity (Segment's identity resolution promotes context.traits.email), not a trait.
        assert batch.user_identities == {"customer_id": "u-1", "email": "ann@example.com"}


def test_an_identify_calls_context_traits_are_its_traits() -> None:
    batch = one_batch(a_call("identify", traits={"plan": "team"}))
    assert batch.user_attributes == {"email": "ann@example.com", "plan": "team", "tags": ["a", "b"]}
    assert batch.context is not None and batch.context.traits is None


def test_calls_without_context_have_none() -> None:
    assert one_batch({"type": "track", "userId": "u", "event": "E"}).context is None
    empty = {"page": {"url": ""}, "campaign": {}, "library": {}, "os": {"name": ""}, "locale": ""}
    assert one_batch(a_call("track", context=empty)).context is None


def test_batch_level_context_applies_to_each_call_and_the_calls_own_wins() -> None:
    body = {"batch": [{"type": "track", "userId": "u", "event": "A", "context": {"page": {"url": "https://own/"}}},
                      {"type": "track", "userId": "u", "event": "B"}],
            "context": {"page": {"url": "https://shared/"}, "campaign": {"source": "ads"}}}
    batches = to_batches(decode_segment("batch", json.dumps(body).encode()), RECEIVED, None)
    pages = [b.context.page.url if b.context and b.context.page else None for b in batches]
    assert pages == ["https://own/", "https://shared/"]
    # Segment merges the two contexts field by field: the first call keeps the shared campaign.
    assert [b.context.campaign.source if b.context and b.context.campaign else None for b in batches] == ["ads"] * 2


def test_location_keeps_only_codes_and_valid_coordinates() -> None:
    context = {"location": {"city": "Springfield", "country": "United States", "region": "Illinois",
                            "latitude": 120, "longitude": "-89.6"}}
    batch = one_batch(a_call("track", context=context))
    assert batch.context is not None
    assert batch.context.location == Location(city_name="Springfield", longitude=-89.6)


def test_the_stored_batch_round_trips_its_context() -> None:
    batch = one_batch(a_call("track"))
    stored = msgspec.json.encode(msgspec.structs.replace(batch, events=[]))
    assert msgspec.json.decode(stored, type=Batch).context == batch.context
    assert b'"utm' not in stored  # typed names, not Segment's raw keys


def test_real_sdks_context_reaches_the_batch() -> None:
    """The Python SDKs' own payloads (what `track` builds) with a caller's context."""
    sent: dict[str, Any] = {}
    for name, client in (("segment", SegmentClient("k", sync_mode=True, send=False)),
                         ("rudder", RudderClient("k", "http://unused.test", sync_mode=True, send=False))):
        _, message = client.track("u-1", "Bought", {"revenue": 9.5},
                                  context={"page": {"url": "https://a.example/"}, "campaign": {"source": "x"}})
        sent[name] = message
    for name, message in sent.items():
        body = json.dumps(message, default=str).encode()
        [batch] = to_batches(decode_segment("track", body), RECEIVED, None)
        assert batch.context is not None, name
        assert batch.context.page == PageContext(url="https://a.example/"), name
        assert batch.context.campaign == CampaignContext(source="x"), name
        assert batch.context.library is not None and batch.context.library.name, name
