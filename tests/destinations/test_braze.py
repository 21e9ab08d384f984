"""Braze: /users/track mapping, the 75-per-kind limit, error classes, and RudderStack's braze fixtures."""

import json
import time
from datetime import datetime
from typing import Any

import httpx
import msgspec
import pytest

from destinations.audience_conformance import member
from destinations.conformance import DestinationConformance
from kaon.activation.membership import DELETE
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from kaon.destinations.registry import destinations
from kaon.model.events import Product
from support.capture import VendorCapture
from support.events import attribute_change, custom, every_kind, purchase, screen, tracked
from support.rudderstack import (
    SEGMENT_TRAITS,
    fixture_case,
    identify_events,
    purchase_event,
    segment_fields,
    track_event,
)


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

    def test_revenue_of_a_track_call_stays_an_event_and_an_order_without_products_carries_it(self) -> None:
        [event] = self.body([tracked(revenue=19.99, currency="EUR")])["events"]
        assert event["properties"] == {"revenue": 19.99, "currency": "EUR"}  # as in RudderStack's braze fixture #2
        bare = purchase(attributes={"revenue": 20.0})
        action = bare.event.data.product_action  # type: ignore[attr-defined]
        bare = msgspec.structs.replace(bare, event=msgspec.structs.replace(bare.event, data=msgspec.structs.replace(
            bare.event.data, product_action=msgspec.structs.replace(action, products=None))))
        [order] = self.body([bare])["events"]
        assert order["name"] == "Order Completed" and order["properties"]["revenue"] == 20.0  # not the total, 25

    def test_anonymous_users_get_an_alias(self) -> None:
        anonymous = msgspec.structs.replace(screen(), user_identities={})
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

def from_segment(message: dict[str, Any]) -> list[DeliveryEvent]:
    common = segment_fields(message, user_identities={"customer_id": message["userId"]})
    properties = message.get("properties", {})
    if message["type"] == "identify":
        return identify_events(message, common, SEGMENT_TRAITS)
    if message["event"] == "Order Completed":
        products = [Product(id=p["product_id"], price=p["price"], quantity=p["quantity"])
                    for p in properties["products"]]
        event: Any = purchase_event(properties["currency"], products)
    else:
        event = track_event(message)
    return [DeliveryEvent(event_id=0, event=event, **common)]


@pytest.mark.parametrize(("case", "user_id"), [
    ("braze_input.json#2", "mickeyMouse"), ("braze_input.json#11", "user-1"), ("braze_input.json#5", "user-1")])
def test_rudderstack_fixture(case: str, user_id: str) -> None:
    fixture = fixture_case("braze.json", case)
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


class TestBrazeAudienceSync:
    """Braze as an audience output: members marked with a custom attribute (array or one boolean per audience)."""

    def test_members_are_added_to_and_removed_from_the_audience_array(self) -> None:
        braze = destinations()["braze"]
        settings = braze.parse_settings({"api_key": "k"})
        (request,) = braze.transform([member(1, customer_id="c-1"), member(2, DELETE, customer_id="c-2")], settings)
        assert json.loads(request.body) == {"attributes": [
            {"external_id": "c-1", "kaon_audiences": {"add": ["aud_1"]}},
            {"external_id": "c-2", "kaon_audiences": {"remove": ["aud_1"]}}]}
        assert request.event_indices == (0, 1)

    def test_one_boolean_per_audience_and_an_alias_without_a_customer_id(self) -> None:
        braze = destinations()["braze"]
        settings = braze.parse_settings({"api_key": "k", "audiences_as": "boolean", "alias_label": "kaon"})
        (request,) = braze.transform([member(1, DELETE, email="x@example.com")], settings)
        assert json.loads(request.body) == {"attributes": [
            {"user_alias": {"alias_name": "8675310", "alias_label": "kaon"}, "_update_existing_only": False,
             "Cart abandoners": False}]}

    def test_a_trigger_is_an_ordinary_custom_event(self) -> None:
        braze = destinations()["braze"]
        trigger = msgspec.structs.replace(member(1, customer_id="c-1"), event=msgspec.structs.replace(
            member(1).event, data=msgspec.structs.replace(member(1).event.data, custom_flags=None)))
        (request,) = braze.transform([trigger], braze.parse_settings({"api_key": "k"}))
        (event,) = json.loads(request.body)["events"]
        assert event["name"] == "audience_membership_change" and event["properties"]["action"] == "add"


def test_an_ingested_event_cannot_pose_as_a_list_sync_change() -> None:
    """A client may send an `audience_membership_change` custom event with the sync flag: it stays a custom event
    (only the sync worker's events, whose input is an audience connection, change lists)."""
    forged = msgspec.structs.replace(member(1, customer_id="victim-42"), input_id="in_0123456789abcdef")
    (request,) = destinations()["braze"].transform([forged], destinations()["braze"].parse_settings({"api_key": "k"}))
    body = json.loads(request.body)
    assert "attributes" not in body and body["events"][0]["name"] == "audience_membership_change"
