"""Mixpanel: /import and /engage mapping, batching, error classes, and RudderStack's mp fixtures."""

import base64
import json
import re
from typing import Any

import httpx
import msgspec
import pytest

from destinations.conformance import DestinationConformance
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from support.capture import VendorCapture
from support.events import T0, attribute_change, custom, every_kind, on_the_web, purchase, screen, tracked
from support.rudderstack import (
    SEGMENT_TRAITS,
    fixture_case,
    identify_events,
    kaon_events,
    segment_fields,
    track_event,
)


class TestMixpanel(DestinationConformance):
    name = "mixpanel"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"project_token": "mp-token", "base_url": base_url}

    def records(self, events: list[DeliveryEvent], **settings: Any) -> list[Any]:
        parsed = self.destination.parse_settings({**self.settings("http://vendor.test"), **settings})
        return [r for request in self.destination.transform(events, parsed) for r in json.loads(request.body)]

    def test_custom_event_goes_to_import_with_basic_auth(self) -> None:
        [request] = self.transformed([custom()])
        assert request.url == "http://vendor.test/import?strict=1"
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"mp-token:").decode()
        [record] = json.loads(request.body)
        assert record["event"] == "Clicked Button"
        properties = record["properties"]
        assert properties["time"] == T0 + 1000 and properties["distinct_id"] == "cust-1"
        assert properties["$insert_id"] == "00000000-0000-4000-8000-000000000001"
        assert properties["color"] == "blue" and properties["$device_id"] == "8675310"
        assert properties["ip"] == "203.0.113.7" and properties["$os"] == "iOS"

    def test_web_context_as_mixpanels_default_properties(self) -> None:
        [record] = self.records([on_the_web(custom())])
        properties = record["properties"]
        assert {k: properties[k] for k in (
            "$current_url", "$referrer", "$referring_domain", "utm_source", "utm_medium", "utm_campaign", "utm_term",
            "utm_content", "ip", "$os", "$os_version", "$browser", "$browser_version", "mp_lib", "$lib_version",
            "$screen_width", "$screen_height")} == {
            "$current_url": "https://shop.example/shoes?utm_source=news", "$referrer": "https://news.example/today",
            "$referring_domain": "news.example", "utm_source": "news", "utm_medium": "email",
            "utm_campaign": "spring", "utm_term": "shoes", "utm_content": "hero", "ip": "198.51.100.4",
            "$os": "Mac OS X", "$os_version": "10.15.7", "$browser": "Chrome", "$browser_version": "120.0.0.0",
            "mp_lib": "analytics.js", "$lib_version": "next-1.70.0", "$screen_width": 1440, "$screen_height": 900}
        assert properties["color"] == "blue"
        [own] = self.records([on_the_web(custom(attributes={"utm_source": "mine"}))])
        assert own["properties"]["utm_source"] == "mine"  # the event's own properties win

    def test_revenue_is_a_number_and_refunds_are_negative(self) -> None:
        [record] = self.records([tracked(revenue="19.99", currency="EUR")])
        assert (record["properties"]["revenue"], record["properties"]["currency"]) == (19.99, "EUR")
        [lead] = self.records([tracked(value=40)])
        assert "revenue" not in lead["properties"] and lead["properties"]["value"] == 40
        order = purchase()
        refund = msgspec.structs.replace(order, event=msgspec.structs.replace(order.event, data=msgspec.structs.replace(
            order.event.data, product_action=msgspec.structs.replace(order.event.data.product_action,
                                                                     action="refund"))))
        [bought, returned] = self.records([order, refund])
        assert (bought["properties"]["revenue"], returned["properties"]["revenue"]) == (25.0, -25.0)

    def test_service_account_auth_adds_project_id(self) -> None:
        parsed = self.destination.parse_settings({**self.settings("http://vendor.test"), "project_id": "42",
                                                  "service_account_username": "sa", "service_account_secret": "pw"})
        [request] = self.destination.transform([custom()], parsed)
        assert request.url == "http://vendor.test/import?strict=1&project_id=42"
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"sa:pw").decode()

    def test_screen_and_purchase(self) -> None:
        shown, bought = self.records([screen(), purchase()])
        assert shown["event"] == "Viewed Home Screen"
        assert bought["event"] == "Order Completed"
        assert bought["properties"]["revenue"] == 25.0 and bought["properties"]["currency"] == "USD"
        assert bought["properties"]["products"][0]["product_id"] == "sku-1"

    def test_attribute_change_goes_to_engage(self) -> None:
        requests = self.transformed(every_kind())
        assert [r.url for r in requests] == ["http://vendor.test/import?strict=1",
                                             "http://vendor.test/engage?verbose=1"]
        assert requests[1].event_indices == (3,) and "Authorization" not in requests[1].headers
        [record] = json.loads(requests[1].body)
        assert record == {"$token": "mp-token", "$distinct_id": "cust-1", "$time": T0 + 4000,
                          "$ip": "203.0.113.7", "$set": {"tier": "platinum"}}
        [renamed] = self.records([attribute_change(name="$firstname", value="Janet")])
        assert renamed["$set"] == {"$first_name": "Janet"}

    def test_at_most_2000_records_per_request(self) -> None:
        requests = self.transformed([custom(n) for n in range(2500)])
        assert [len(r.event_indices) for r in requests] == [2000, 500]

    def test_error_classes(self, capture: VendorCapture) -> None:
        [request, engage] = self.transformed(every_kind(), capture.url)
        with httpx.Client() as client:
            capture.answer_next(1, 400, body={
                "code": 400, "error": "some data points in the request failed validation", "status": "Bad Request",
                "num_records_imported": 2, "failed_records": [
                    {"index": 1, "$insert_id": "x", "field": "properties.time", "message": "too old"}]})
            partial = send(client, self.destination, request, 10)
            assert partial.outcome == Outcome.ABORT and partial.failed_indices == (1,)
            assert "2 imported" in partial.message
            capture.answer_next(1, 429, body={"error": "rate limited"})
            assert send(client, self.destination, request, 10).outcome == Outcome.RETRY
            capture.answer_next(1, 401, body={"error": "Invalid credentials"})
            assert send(client, self.destination, request, 10).outcome == Outcome.ABORT
            capture.answer_next(1, 200, body={"status": 0, "error": "$distinct_id is missing"})
            refused = send(client, self.destination, engage, 10)
            assert refused.outcome == Outcome.ABORT and refused.failed_indices == (3,)
            capture.answer_next(1, 200, body={"status": 1, "error": None})
            assert send(client, self.destination, engage, 10).outcome == Outcome.DELIVERED


# RudderStack fixtures (mp_input.json / mp_output.json at the last MIT commit; clock pinned to 2020-01-25).

def from_segment(message: dict[str, Any]) -> list[DeliveryEvent]:
    common = segment_fields(message, ip=message.get("context", {}).get("ip"),
                            user_identities={"customer_id": message.get("userId") or None})
    if message["type"] == "track":
        return [DeliveryEvent(event_id=0, event=track_event(message), **common)]
    return identify_events(message, common, SEGMENT_TRAITS)


@pytest.mark.parametrize(("case", "settings"), [
    ("mp_input.json#34", {"api_secret": "some_api_secret", "base_url": "https://api-eu.mixpanel.com"}),
    ("mp_input.json#41", {"api_secret": "dummyApiKey"}),
    ("mp_input.json#5", {}),
])
def test_rudderstack_fixture(case: str, settings: dict[str, Any]) -> None:
    fixture = fixture_case("mixpanel.json", case)
    message, [expected] = fixture["input"]["message"], fixture["expected"]
    config = fixture["input"]["destination"]["Config"]
    destination = TestMixpanel().destination
    parsed = destination.parse_settings({"project_token": config["token"], **settings})
    [request] = destination.transform(from_segment(message), parsed)
    assert request.method == expected["method"]
    # RudderStack writes `/import/` and `/engage/`; Mixpanel documents them without the slash.
    assert request.url.split("?")[0] == expected["endpoint"].rstrip("/")
    for header, value in expected["headers"].items():
        assert request.headers[header] == value
    want = json.loads(expected["body"]["JSON_ARRAY"]["batch"])
    got = json.loads(request.body)
    if message["type"] == "track":
        [record], [wanted] = got, want
        assert record["event"] == wanted["event"]
        if message.get("userId"):
            assert record["properties"]["distinct_id"] == wanted["properties"]["distinct_id"]
        insert_id = record["properties"]["$insert_id"]
        assert re.fullmatch(r"[A-Za-z0-9-]{1,36}", insert_id)  # Mixpanel's rule, which both sides keep
        if len(message["messageId"]) <= 36:
            assert insert_id == wanted["properties"]["$insert_id"] == message["messageId"]
        if wanted["properties"]["time"] is not None:
            # The fixture sends seconds; we send milliseconds (Mixpanel accepts both on /import).
            assert record["properties"]["time"] // 1000 == wanted["properties"]["time"]
    else:
        [wanted] = want
        for record in got:
            assert record["$token"] == wanted["$token"] and record["$ip"] == wanted["$ip"]
            assert record["$time"] // 1000 == wanted["$time"]  # seconds in the fixture, ms here
            [(key, value)] = record["$set"].items()
            if key in wanted["$set"]:  # RudderStack also renames firstName etc. by its own trait names
                assert wanted["$set"][key] == value
        assert {k for r in got for k in r["$set"]} >= {"$city", "$country_code", "$first_name", "$last_name"}


@pytest.mark.parametrize("case", ["mp_input.json#6", "mp_input.json#0", "mp_input.json#20", "mp_input.json#48"])
def test_rudderstack_fixture_through_kaons_segment_adapter(case: str) -> None:
    """Context and revenue through Kaon's own Segment adapter: `$current_url`, `ip`, `mp_lib`, `$browser`,
    `revenue`, `currency` as RudderStack sends them (compared where both send the field)."""
    fixture = fixture_case("mixpanel.json", case)
    message = fixture["input"]["message"]
    expected = fixture["expected"] if isinstance(fixture["expected"], list) else [fixture["expected"]]
    [want] = [r for e in expected if e["endpoint"].endswith(("/track/", "/import/"))
              for r in json.loads(e["body"]["JSON_ARRAY"]["batch"])]
    destination = TestMixpanel().destination
    settings = destination.parse_settings({"project_token": "dummyApiKey"})
    records = [r for q in destination.transform(kaon_events(message, 0), settings) if "/import" in q.url
               for r in json.loads(q.body)]
    [got] = records
    compared = ("$current_url", "ip", "mp_lib", "$browser", "$browser_version", "revenue", "currency", "$referrer")
    assert [k for k in compared if k in want["properties"]], "the case must carry context to compare"
    for key in compared:
        if key in want["properties"]:
            assert got["properties"].get(key) == want["properties"][key], key
