"""Braze: /users/track mapping, the 75-per-kind limit, error classes, and RudderStack's braze fixtures."""

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from destinations.conformance import DestinationConformance
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from kaon.model.events import (
    CommerceEvent,
    CommerceEventData,
    CustomEvent,
    CustomEventData,
    Product,
    ProductAction,
    UserAttributeChange,
    UserAttributeChangeData,
)
from support.capture import VendorCapture
from support.events import attribute_change, custom, every_kind, purchase, screen

FIXTURES = Path("/work/shared/conformance/rudderstack/braze.json")


class TestBraze(DestinationConformance):
    name = "braze"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"api_key": "braze-key", "base_url": base_url}

    def body(self, events: list[DeliveryEvent]) -> dict[str, Any]:
        [request] = self.transformed(events)
        return dict(json.loads(request.body))

    def test_custom_event_with_bearer_auth(self) -> None:
        [request] = self.transformed([custom()])
        assert request.url == "http://vendor.test/users/track"
        assert request.headers["Authorization"] == "Bearer braze-key"
        assert json.loads(request.body) == {"events": [{
            "external_id": "cust-1", "name": "Clicked Button", "time": "2026-11-25T09:46:41.000Z",
            "properties": {"color": "blue", "n": 3}}]}

    def test_screen_purchase_and_attributes(self) -> None:
        body = self.body(every_kind())
        assert [e["name"] for e in body["events"]] == ["Clicked Button", "Viewed Home Screen"]
        assert body["purchases"] == [{"external_id": "cust-1", "product_id": "sku-1", "currency": "USD",
                                      "price": 12.5, "quantity": 2, "time": "2026-11-25T09:46:43.000Z",
                                      "properties": {"order_id": "T-1", "tax": 0.5, "shipping": 0.0,
                                                     "name": "Foo", "category": "Toys"}}]
        assert body["attributes"] == [{"external_id": "cust-1", "tier": "platinum"}]
        renamed = self.body([attribute_change(name="$City", value="Paris")])
        assert renamed["attributes"] == [{"external_id": "cust-1", "home_city": "Paris"}]

    def test_anonymous_users_get_an_alias(self) -> None:
        anonymous = DeliveryEvent(**{**{f: getattr(screen(), f) for f in screen().__struct_fields__},
                                     "user_identities": {}})
        [event] = self.body([anonymous])["events"]
        assert event["user_alias"] == {"alias_name": "8675311", "alias_label": "mpid"}
        assert event["_update_existing_only"] is False

    def test_at_most_75_objects_of_each_kind(self) -> None:
        requests = self.transformed([custom(n) for n in range(160)] + [attribute_change(n) for n in range(10)])
        assert [len(json.loads(r.body).get("events", ())) for r in requests] == [75, 75, 10]
        assert len(json.loads(requests[-1].body)["attributes"]) == 10

    def test_error_classes(self, capture: VendorCapture) -> None:
        [request] = self.transformed(every_kind(), capture.url)
        with httpx.Client() as client:
            capture.answer_next(1, 201, body={"message": "success", "errors": [
                {"type": "'price' is not valid", "input_array": "purchases", "index": 0},
                {"type": "'name' is required", "input_array": "events", "index": 1}]})
            partial = send(client, self.destination, request, 10)
            assert partial.outcome == Outcome.DELIVERED and partial.failed_indices == (1, 2)
            reset = str(int(time.time()) + 20)
            capture.answer_next(1, 429, headers={"X-RateLimit-Reset": reset}, body={"message": "rate limited"})
            limited = send(client, self.destination, request, 10)
            assert limited.outcome == Outcome.RETRY and limited.retry_after_s is not None
            assert 15 <= limited.retry_after_s <= 20
            capture.answer_next(1, 401, body={"message": "Invalid API key"})
            assert send(client, self.destination, request, 10).outcome == Outcome.ABORT
            capture.answer_next(1, 500, body={"message": "Internal error"})
            assert send(client, self.destination, request, 10).outcome == Outcome.RETRY


# RudderStack fixtures (braze_input.json / braze_output.json at the last MIT commit).

SEGMENT_TRAITS = {"city": "$city", "country": "$country", "firstName": "$firstname", "lastName": "$lastname"}


def _ms(message: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(message.get("timestamp") or message["originalTimestamp"]).timestamp() * 1000)


def from_segment(message: dict[str, Any]) -> list[DeliveryEvent]:
    common: dict[str, Any] = dict(workspace_id="ws", input_id="in", mpid=1, source_message_id=message["messageId"],
                                  timestamp_ms=_ms(message), user_identities={"customer_id": message["userId"]})
    properties = message.get("properties", {})
    if message["type"] == "identify":
        traits = message.get("traits") or message["context"].get("traits", {})
        return [DeliveryEvent(event_id=n, event=UserAttributeChange(data=UserAttributeChangeData(
            user_attribute_name=SEGMENT_TRAITS.get(k, k), new=v)), **common) for n, (k, v) in enumerate(traits.items())]
    if message["event"] == "Order Completed":
        products = [Product(id=p["product_id"], price=p["price"], quantity=p["quantity"])
                    for p in properties["products"]]
        event: Any = CommerceEvent(data=CommerceEventData(currency_code=properties["currency"], product_action=(
            ProductAction(action="purchase", products=products))))
    else:
        event = CustomEvent(data=CustomEventData(event_name=message["event"], custom_attributes=properties))
    return [DeliveryEvent(event_id=0, event=event, **common)]


@pytest.mark.parametrize(("case", "user_id"), [
    ("braze_input.json#2", "mickeyMouse"), ("braze_input.json#11", "user-1"), ("braze_input.json#5", "user-1")])
def test_rudderstack_fixture(case: str, user_id: str) -> None:
    if not FIXTURES.exists():
        pytest.skip("RudderStack conformance fixtures not available")
    fixture = {c["name"]: c for c in json.loads(FIXTURES.read_text())}[case]
    message, expected = dict(fixture["input"]["message"]), fixture["expected"]
    message["userId"] = message.get("userId") or user_id  # anonymous cases use RudderStack's alias convention
    host = expected["endpoint"].removesuffix("/users/track")
    destination = TestBraze().destination
    settings = destination.parse_settings({"api_key": fixture["input"]["destination"]["Config"]["restApiKey"],
                                           "base_url": host})
    [request] = destination.transform(from_segment(message), settings)
    assert (request.method, request.url) == (expected["method"], expected["endpoint"])
    for header, value in expected["headers"].items():
        assert request.headers[header] == value
    got, want = json.loads(request.body), expected["body"]["JSON"]
    for event, wanted in zip(got.get("events", ()), want.get("events", ()), strict=True):
        assert event["name"] == wanted["name"]
        assert event["properties"].items() >= wanted["properties"].items()  # RudderStack drops `currency`
        assert datetime.fromisoformat(event["time"]) == datetime.fromisoformat(wanted["time"])  # same instant
    for purchase_, wanted in zip(got.get("purchases", ()), want.get("purchases", ()), strict=True):
        for field in ("product_id", "currency", "price", "quantity"):
            assert purchase_[field] == wanted[field], field
        assert datetime.fromisoformat(purchase_["time"]) == datetime.fromisoformat(wanted["time"])
    if message["type"] == "identify":
        [wanted] = want["attributes"]
        for attributes in got["attributes"]:
            assert attributes["external_id"] == message["userId"]
            for key, value in attributes.items():
                if key in wanted:  # Braze standard names (first_name, home_city) where RudderStack passes traits
                    assert wanted[key] == value, key
        assert "country" in {k for a in got["attributes"] for k in a}
