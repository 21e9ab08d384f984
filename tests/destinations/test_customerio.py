"""Customer.io Track API: people, events, anonymous events, commerce, regions, error classes."""

import base64
import json
from typing import Any

import httpx
import msgspec

from destinations.audience_conformance import member
from destinations.conformance import DestinationConformance
from kaon.activation.membership import ADD, DELETE, SETTINGS_FLAG
from kaon.delivery.send import send
from kaon.destinations.customerio import MAX_SEGMENT_IDS, ulid
from kaon.destinations.customerio import destination as cio
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from support.capture import VendorCapture
from support.events import T0, attribute_change, custom, every_kind, on_the_web, purchase, screen

BASIC = "Basic " + base64.b64encode(b"site-1:key-1").decode()


class TestCustomerIo(DestinationConformance):
    name = "customerio"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "site_id": "site-1", "api_key": "key-1"}

    def test_custom_event_to_the_customer(self) -> None:
        [request] = self.transformed([custom()])
        assert request.method == "POST" and request.url == "http://vendor.test/api/v1/customers/cust-1/events"
        assert request.headers["Authorization"] == BASIC
        assert json.loads(request.body) == {
            "name": "Clicked Button", "type": "event", "data": {"color": "blue", "n": 3},
            "timestamp": (T0 + 1000) // 1000, "id": ulid(T0 + 1000, "00000000-0000-4000-8000-000000000001")}

    def test_screen_is_a_screen_event_and_web_a_page(self) -> None:
        [request] = self.transformed([screen()])
        assert json.loads(request.body)["type"] == "screen" and json.loads(request.body)["name"] == "Home"
        item = screen()
        assert item.device_info is not None
        web = msgspec.structs.replace(item, device_info=msgspec.structs.replace(item.device_info, platform="web"))
        assert json.loads(self.transformed([web])[0].body)["type"] == "page"

    def test_a_web_page_event_is_named_by_its_url(self) -> None:
        body = json.loads(self.transformed([on_the_web(screen())])[0].body)
        assert (body["type"], body["name"]) == ("page", "https://shop.example/shoes?utm_source=news")
        assert body["data"] == {"referrer": "ad", "name": "Home"}
        own = on_the_web(msgspec.structs.replace(screen(), event=msgspec.structs.replace(screen().event, data=(
            msgspec.structs.replace(screen().event.data, custom_attributes={"url": "https://shop.example/a"})))))
        assert json.loads(self.transformed([own])[0].body)["name"] == "https://shop.example/a"

    def test_an_orders_revenue_wins_over_its_total(self) -> None:
        body = json.loads(self.transformed([purchase(attributes={"revenue": 20.0})])[0].body)
        assert (body["data"]["total"], body["data"]["revenue"]) == (25.0, 20.0)

    def test_purchase_is_order_completed(self) -> None:
        body = json.loads(self.transformed([purchase()])[0].body)
        assert body["name"] == "Order Completed" and body["type"] == "event"
        assert body["data"] == {"order_id": "T-1", "total": 25.0, "revenue": 25.0, "tax": 0.5, "shipping": 0.0,
                                "currency": "USD", "products": [{"product_id": "sku-1", "sku": "sku-1",
                                                                 "name": "Foo", "price": 12.5, "quantity": 2.0,
                                                                 "category": "Toys"}]}

    def test_attribute_change_updates_the_person(self) -> None:
        [request] = self.transformed([attribute_change()])
        assert request.method == "PUT" and request.url == "http://vendor.test/api/v1/customers/cust-1"
        assert json.loads(request.body) == {"first_name": "Jane", "last_name": "Doe", "tier": "platinum",
                                            "city": "Berlin", "email": "jane@example.com"}
        deleted = attribute_change()
        data = msgspec.structs.replace(deleted.event.data, deleted=True)
        gone = msgspec.structs.replace(deleted, event=msgspec.structs.replace(deleted.event, data=data),
                                       user_attributes={"createdAt": 1_600_000_000_000})
        assert json.loads(self.transformed([gone])[0].body) == {"tier": "", "email": "jane@example.com",
                                                                "created_at": 1_600_000_000}

    def test_ids_in_the_path_are_url_encoded(self) -> None:
        item = msgspec.structs.replace(custom(), user_identities={"customer_id": "user/with slashes@x"})
        assert self.transformed([item])[0].url.endswith("/api/v1/customers/user%2Fwith%20slashes%40x/events")

    def test_anonymous_events_and_profile_updates(self) -> None:
        anonymous = [msgspec.structs.replace(e, user_identities={}) for e in every_kind()]
        requests = self.transformed(anonymous)
        assert [r.event_indices for r in requests] == [(0,), (1,), (2,)]  # no person to update
        assert requests[0].url == "http://vendor.test/api/v1/events"
        body = json.loads(requests[0].body)
        assert body["anonymous_id"] == "8675310" and body["name"] == "Clicked Button"
        off = cio.parse_settings({**self.settings("http://vendor.test"), "send_anonymous": False})
        assert cio.transform(anonymous, off) == []

    def test_region_picks_the_host(self) -> None:
        us = cio.parse_settings({"site_id": "s", "api_key": "k"})
        eu = cio.parse_settings({"site_id": "s", "api_key": "k", "region": "eu"})
        assert cio.transform([custom()], us)[0].url.startswith("https://track.customer.io/api/v1/")
        assert cio.transform([custom()], eu)[0].url.startswith("https://track-eu.customer.io/api/v1/")

    def test_one_event_per_request(self) -> None:
        requests = self.transformed([custom(n) for n in range(5)])
        assert [r.event_indices for r in requests] == [(0,), (1,), (2,), (3,), (4,)]
        assert cio.policy.batch_size == 100 <= MAX_SEGMENT_IDS  # a bounded claim; events still one request each

    def test_audience_members_go_to_the_connections_manual_segment(self) -> None:
        def member_of(n: int, action: str = ADD, **identities: str) -> DeliveryEvent:
            made = member(n, action, **identities)
            flags = {**(made.event.data.custom_flags or {}), SETTINGS_FLAG: {"segment_id": 7}}
            return msgspec.structs.replace(made, event=msgspec.structs.replace(
                made.event, data=msgspec.structs.replace(made.event.data, custom_flags=flags)))

        changes = [member_of(1, customer_id="c-1"), member_of(2, customer_id="c-2"), member_of(3, email="e@x.io"),
                   member_of(4, DELETE, customer_id="c-1"), custom(5), member_of(6, other="nobody")]
        requests = self.transformed(changes)
        assert [(r.url.removeprefix("http://vendor.test"), json.loads(r.body), r.event_indices) for r in requests] == [
            ("/api/v1/segments/7/add_customers?id_type=id", {"ids": ["c-1", "c-2"]}, (0, 1)),
            ("/api/v1/segments/7/add_customers?id_type=email", {"ids": ["e@x.io"]}, (2,)),
            ("/api/v1/segments/7/remove_customers?id_type=id", {"ids": ["c-1"]}, (3,)),
            ("/api/v1/customers/cust-1/events", json.loads(requests[3].body), (4,))]
        many = self.transformed([member_of(n, customer_id=f"c{n}") for n in range(MAX_SEGMENT_IDS + 1)])
        assert [len(r.event_indices) for r in many] == [MAX_SEGMENT_IDS, 1]

    def test_ulid_is_valid_and_stable(self) -> None:
        value = ulid(T0, "m-1")
        assert len(value) == 26 and value == ulid(T0, "m-1") != ulid(T0, "m-2")
        assert set(value) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") and value[0] in "01234567"

    def test_wire_request_and_error_classes(self, capture: VendorCapture) -> None:
        [request] = self.transformed([custom()], capture.url)
        with httpx.Client() as client:
            assert send(client, cio, request, 10).outcome == Outcome.DELIVERED
            capture.answer_next(1, 429, headers={"Retry-After": "3"})
            throttled = send(client, cio, request, 10)
            capture.answer_next(1, 401, body={"meta": {"error": "Unauthorized request"}})
            unauthorized = send(client, cio, request, 10)
            capture.answer_next(1, 403, body={"meta": {"error": "forbidden"}})
            forbidden = send(client, cio, request, 10)
            capture.answer_next(1, 400, body={"meta": {"error": "invalid timestamp"}})
            invalid = send(client, cio, request, 10)
        assert (throttled.outcome, throttled.retry_after_s) == (Outcome.RETRY, 3.0)
        assert [r.outcome for r in (unauthorized, forbidden, invalid)] == [Outcome.ABORT] * 3
        got = capture.requests()[0]
        assert got.method == "POST" and got.route == "/api/v1/customers/cust-1/events"
        assert got.headers["authorization"] == BASIC and got.headers["content-type"] == "application/json"
        body = got.json()
        assert isinstance(body["timestamp"], int) and isinstance(body["name"], str) and isinstance(body["data"], dict)
