"""Amplitude: HTTP API v2 mapping, batching, error classes, and RudderStack's am fixtures."""

import json
from typing import Any

import httpx
import msgspec
import pytest

from destinations.conformance import DestinationConformance
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from kaon.model.batch import DeviceInfo
from kaon.model.events import Product
from support.capture import VendorCapture
from support.events import T0, attribute_change, custom, every_kind, on_the_web, purchase, screen, tracked
from support.rudderstack import (
    fixture_case,
    identify_events,
    kaon_events,
    purchase_event,
    screen_event,
    segment_fields,
    track_event,
)


class TestAmplitude(DestinationConformance):
    name = "amplitude"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"api_key": "am-key", "base_url": base_url}

    def bodies(self, events: list[DeliveryEvent], **settings: Any) -> list[dict[str, Any]]:
        parsed = self.destination.parse_settings({**self.settings("http://vendor.test"), **settings})
        return [json.loads(r.body) for r in self.destination.transform(events, parsed)]

    def test_custom_event(self) -> None:
        [body] = self.bodies([custom()])
        assert body["api_key"] == "am-key"
        [event] = body["events"]
        assert event["event_type"] == "Clicked Button"
        assert event["event_properties"] == {"color": "blue", "n": 3}
        assert event["user_id"] == "cust-1" and event["device_id"] == "8675310"
        assert event["time"] == T0 + 1000 and event["insert_id"] == "00000000-0000-4000-8000-000000000001"
        assert event["ip"] == "203.0.113.7" and event["platform"] == "iOS" and event["os_version"] == "17.1"
        assert event["idfa"] == "613ff95e-4b2a-4f86-9a13-7e5f1d3c6d91" and event["app_version"] == "1.2.3"

    def test_web_context_fields(self) -> None:
        [event] = self.bodies([on_the_web(custom())])[0]["events"]
        assert (event["ip"], event["platform"], event["language"]) == ("198.51.100.4", "Web", "de-DE")
        # Amplitude has no campaign or page fields: UTM parameters and the referrer are event properties.
        assert event["event_properties"] == {
            "color": "blue", "n": 3, "utm_source": "news", "utm_medium": "email", "utm_campaign": "spring",
            "utm_term": "shoes", "utm_content": "hero", "utm_adgroup": "a-7", "referrer": "https://news.example/today"}
        [own] = self.bodies([on_the_web(custom(attributes={"utm_source": "mine"}))])[0]["events"]
        assert own["event_properties"]["utm_source"] == "mine"

    def test_track_revenue_moves_to_amplitudes_revenue_fields(self) -> None:
        [event] = self.bodies([tracked(revenue=19.99, currency="EUR", price=9.995, quantity=2, productId="sku-9",
                                       revenueType="Subscription", plan="pro")])[0]["events"]
        assert (event["revenue"], event["price"], event["quantity"], event["productId"], event["revenueType"],
                event["currency"]) == (19.99, 9.995, 2, "sku-9", "Subscription", "EUR")
        assert event["event_properties"] == {"currency": "EUR", "plan": "pro"}
        [default] = self.bodies([tracked(revenue="5")])[0]["events"]
        assert (default["revenue"], default["revenueType"]) == (5.0, "Purchased")

    def test_value_or_price_alone_is_not_revenue(self) -> None:
        [event] = self.bodies([tracked(value=40, price=10, quantity=3)])[0]["events"]
        assert not {"revenue", "price", "quantity"} & event.keys()
        assert event["event_properties"] == {"value": 40, "price": 10, "quantity": 3}

    def test_an_orders_revenue_wins_over_its_total(self) -> None:
        order = msgspec.structs.replace(purchase(), event=msgspec.structs.replace(purchase().event, data=(
            msgspec.structs.replace(purchase().event.data, custom_attributes={"revenue": 20.0}))))
        [event] = self.bodies([order])[0]["events"]
        assert event["revenue"] == 20.0 and "revenue" not in event["event_properties"]

    def test_screen_view_name_is_configurable(self) -> None:
        assert self.bodies([screen()])[0]["events"][0]["event_type"] == "Viewed Home Screen"
        body = self.bodies([screen()], screen_event_name="Screen: {name}")[0]
        assert body["events"][0]["event_type"] == "Screen: Home"

    def test_purchase_carries_revenue(self) -> None:
        [event] = self.bodies([purchase()])[0]["events"]
        assert event["event_type"] == "Order Completed"
        assert event["revenue"] == 25.0 and event["revenueType"] == "Purchased"
        assert event["event_properties"]["order_id"] == "T-1"
        assert event["event_properties"]["products"] == [
            {"product_id": "sku-1", "name": "Foo", "category": "Toys", "price": 12.5, "quantity": 2}]

    def test_revenue_per_product(self) -> None:
        order, product = self.bodies([purchase()], track_revenue_per_product=True)[0]["events"]
        assert "revenue" not in order
        assert product["event_type"] == "Product Purchased"
        assert (product["productId"], product["price"], product["quantity"], product["revenueType"]) == (
            "sku-1", 12.5, 2, "Purchased")
        assert product["insert_id"] != order["insert_id"]

    def test_attribute_change_is_an_identify(self) -> None:
        [event] = self.bodies([attribute_change()])[0]["events"]
        assert event["event_type"] == "$identify"
        assert event["user_properties"] == {"$set": {"tier": "platinum"}}
        [renamed] = self.bodies([attribute_change(name="$FirstName", value="Janet")])[0]["events"]
        assert renamed["user_properties"] == {"$set": {"first_name": "Janet"}}

    def test_batch_endpoint_and_options(self) -> None:
        parsed = self.destination.parse_settings({**self.settings("http://vendor.test"), "endpoint": "batch",
                                                  "min_id_length": 1})
        [request] = self.destination.transform(every_kind(), parsed)
        assert request.url == "http://vendor.test/batch"
        assert json.loads(request.body)["options"] == {"min_id_length": 1}

    def test_at_most_2000_events_and_1_mb_per_request(self) -> None:
        events = [custom(n) for n in range(4100)]
        requests = self.transformed(events)
        assert [len(r.event_indices) for r in requests] == [2000, 2000, 100]
        assert [len(json.loads(r.body)["events"]) for r in requests] == [2000, 2000, 100]
        big = [custom(n, attributes={"blob": "x" * 3000}) for n in range(600)]
        sized = self.transformed(big)
        assert len(sized) > 1 and all(len(r.body) <= 1_000_000 for r in sized)
        assert sorted(i for r in sized for i in r.event_indices) == list(range(600))

    def test_events_without_any_id_are_skipped(self) -> None:
        anonymous = DeliveryEvent(event_id=9, workspace_id="w", input_id="i", mpid=None, event=custom().event,
                                  source_message_id="m-9", timestamp_ms=T0)
        assert self.transformed([anonymous, custom()])[0].event_indices == (1,)

    def test_error_classes(self, capture: VendorCapture) -> None:
        requests = self.transformed(every_kind(), capture.url)
        [request] = requests
        with httpx.Client() as client:
            capture.answer_next(1, 429, body={"code": 429, "throttled_users": {"cust-1": 31}})
            throttled = send(client, self.destination, request, 10)
            assert throttled.outcome == Outcome.RETRY and throttled.retry_after_s == 30
            capture.answer_next(1, 400, body={"code": 400, "error": "Invalid field values on some events",
                                              "events_with_invalid_fields": {"time": [1]},
                                              "events_with_missing_fields": {"event_type": [3]}})
            partial = send(client, self.destination, request, 10)
            assert partial.outcome == Outcome.RETRY_PART
            assert partial.failed_indices == (1, 3) and partial.retry_indices == (0, 2)
            capture.answer_next(1, 400, body={"code": 400, "events_with_invalid_fields": {"time": [0, 1, 2, 3]}})
            assert send(client, self.destination, request, 10).outcome == Outcome.ABORT
            capture.answer_next(1, 400, body={"code": 400, "error": "Invalid API key", "missing_field": "api_key"})
            assert send(client, self.destination, request, 10).outcome == Outcome.ABORT
            capture.answer_next(1, 413, body={"code": 413, "error": "Payload too large"})
            assert send(client, self.destination, request, 10).outcome == Outcome.RETRY
        assert capture.requests()[0].route == "/2/httpapi"

    def test_invalid_positions_map_back_through_fan_out(self, capture: VendorCapture) -> None:
        parsed = self.destination.parse_settings({**self.settings(capture.url), "track_revenue_per_product": True})
        [request] = self.destination.transform([purchase(), custom()], parsed)  # 3 Amplitude events
        with httpx.Client() as client:
            capture.answer_next(1, 400, body={"events_with_invalid_fields": {"price": [1]}})
            result = send(client, self.destination, request, 10)
        assert (result.outcome, result.failed_indices, result.retry_indices) == (Outcome.RETRY_PART, (0,), (1,))


# RudderStack fixtures (am_input.json / am_output.json at the last MIT commit).

def from_segment(message: dict[str, Any]) -> list[DeliveryEvent]:
    """The canonical events for a Segment-spec message (track, screen, identify; order completed)."""
    context = message.get("context", {})
    common = segment_fields(message, ip=context.get("ip"),
                            user_identities={"customer_id": message.get("userId") or None},
                            device_info=DeviceInfo(amp_id=message.get("anonymousId")))
    properties = message.get("properties", {})
    kind = message["type"]
    if kind == "track" and message["event"] == "Order Completed":
        products = [Product(id=p.get("product_id"), name=p.get("name"), price=p.get("price"),
                            quantity=p.get("quantity")) for p in properties.get("products", [])]
        event = purchase_event(properties.get("currency"), products, transaction_id=properties.get("order_id"),
                               total_amount=properties.get("revenue"))
        return [DeliveryEvent(event_id=0, event=event, **common)]
    if kind == "track":
        return [DeliveryEvent(event_id=0, event=track_event(message), **common)]
    if kind == "screen":
        return [DeliveryEvent(event_id=0, event=screen_event(message.get("name") or properties["name"]), **common)]
    assert kind == "identify"
    return identify_events(message, common)


@pytest.mark.parametrize("case", ["am_input.json#5", "am_input.json#39", "am_input.json#22", "am_input.json#2",
                                  "am_input.json#30"])
def test_rudderstack_fixture(case: str) -> None:
    fixture = fixture_case("amplitude.json", case)
    expected = fixture["expected"]
    message = fixture["input"]["message"]
    suite = TestAmplitude()
    settings = suite.destination.parse_settings({"api_key": fixture["input"]["destination"]["Config"]["apiKey"]})
    [request] = suite.destination.transform(from_segment(message), settings)
    assert (request.method, request.url) == (expected["method"], expected["endpoint"])
    assert request.headers["Content-Type"] == expected["headers"]["Content-Type"]
    body, want = json.loads(request.body), expected["body"]["JSON"]
    assert body["api_key"] == want["api_key"]
    [want_event] = want["events"]
    for got in body["events"]:
        assert got["event_type"] == want_event["event_type"]
        for field in ("user_id", "device_id", "insert_id", "revenueType"):
            assert got.get(field) == want_event.get(field), field
        if "time" in want_event:
            assert got["time"] == want_event["time"]
        if "revenue" in want_event:
            assert got["revenue"] == want_event["revenue"]
        if message["type"] == "track" and "products" not in want_event["event_properties"]:
            assert got["event_properties"] == want_event["event_properties"]
        if message["type"] == "identify":
            # Ours is one $identify per changed attribute, with an explicit $set operation.
            [(key, value)] = got["user_properties"]["$set"].items()
            if key in want_event["user_properties"]:  # RudderStack flattens `address`, moves some to $setOnce
                assert want_event["user_properties"][key] == value


@pytest.mark.parametrize("case", ["am_input.json#22", "am_input.json#5", "am_input.json#3"])
def test_rudderstack_fixture_through_kaons_segment_adapter(case: str) -> None:
    """Context and revenue as Kaon's own Segment adapter maps the message: the ip, the locale as `language`,
    and an order's `revenue` (over its `total`), `price`, `quantity` at the top of the event."""
    fixture = fixture_case("amplitude.json", case)
    message, [want] = fixture["input"]["message"], fixture["expected"]["body"]["JSON"]["events"]
    suite = TestAmplitude()
    settings = suite.destination.parse_settings({"api_key": "abcde"})
    [request] = suite.destination.transform(kaon_events(message, 0), settings)
    [got] = json.loads(request.body)["events"]
    assert got["event_type"] == want["event_type"] or message["type"] == "page"  # RudderStack's page naming
    for field in ("user_id", "insert_id", "time", "ip", "language", "revenue", "price", "quantity",
                  "revenueType"):
        assert got.get(field) == want.get(field), field
    for key, value in got["event_properties"].items():
        if key in want["event_properties"] and key != "products":
            assert value == want["event_properties"][key], key
