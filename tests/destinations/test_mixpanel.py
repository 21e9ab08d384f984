"""Mixpanel: /import and /engage mapping, batching, error classes, and RudderStack's mp fixtures."""

import base64
import json
import re
from typing import Any

import httpx
import pytest

from destinations.conformance import DestinationConformance
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from support.capture import VendorCapture
from support.events import T0, attribute_change, custom, every_kind, purchase, screen
from support.rudderstack import SEGMENT_TRAITS, fixture_case, identify_events, segment_fields, track_event


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
