"""Iterable: trackBulk, bulkUpdate and trackPurchase shapes, bulk limits, partial failures, error classes."""

import json
from typing import Any

import httpx
import msgspec

from destinations.audience_conformance import member
from destinations.conformance import DestinationConformance
from kaon.activation.membership import ADD, DELETE, SETTINGS_FLAG
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.iterable import destination as iterable
from kaon.destinations.outcome import Outcome
from support.capture import VendorCapture
from support.events import T0, attribute_change, custom, every_kind, purchase, screen


class TestIterable(DestinationConformance):
    name = "iterable"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "api_key": "it-key"}

    def test_events_and_screens_go_to_track_bulk(self) -> None:
        requests = self.transformed([custom(), screen()])
        [request] = requests
        assert request.url == "http://vendor.test/api/events/trackBulk" and request.event_indices == (0, 1)
        assert request.headers["Api-Key"] == "it-key"
        assert json.loads(request.body) == {"events": [
            {"email": "jane@example.com", "userId": "cust-1", "eventName": "Clicked Button",
             "createdAt": (T0 + 1000) // 1000, "dataFields": {"color": "blue", "n": 3},
             "id": "00000000-0000-4000-8000-000000000001"},
            {"email": "jane@example.com", "userId": "cust-1", "eventName": "Home screen",
             "createdAt": (T0 + 2000) // 1000, "dataFields": {"referrer": "ad"},
             "id": "00000000-0000-4000-8000-000000000002"}]}

    def test_purchase_goes_to_track_purchase(self) -> None:
        [request] = self.transformed([purchase()])
        assert request.url == "http://vendor.test/api/commerce/trackPurchase"
        assert json.loads(request.body) == {
            "id": "00000000-0000-4000-8000-000000000003",
            "user": {"email": "jane@example.com", "userId": "cust-1"},
            "items": [{"id": "sku-1", "sku": "sku-1", "name": "Foo", "price": 12.5, "quantity": 2,
                       "categories": ["Toys"]}],
            "total": 25.0, "createdAt": (T0 + 3000) // 1000, "dataFields": {"currency": "USD", "order_id": "T-1"}}

    def test_a_purchases_total_is_its_revenue_when_sent(self) -> None:
        [request] = self.transformed([purchase(attributes={"revenue": 20.0})])
        assert json.loads(request.body)["total"] == 20.0

    def test_attribute_change_goes_to_bulk_update(self) -> None:
        [request] = self.transformed([attribute_change()])
        assert request.url == "http://vendor.test/api/users/bulkUpdate"
        assert json.loads(request.body) == {"users": [{
            "email": "jane@example.com", "userId": "cust-1", "preferUserId": True,
            "dataFields": {"firstName": "Jane", "lastName": "Doe", "tier": "platinum", "city": "Berlin"}}]}

    def test_every_kind_and_users_without_identity(self) -> None:
        requests = self.transformed(every_kind())
        assert [(r.url.rsplit("/", 1)[1], r.event_indices) for r in requests] == [
            ("trackBulk", (0, 1)), ("trackPurchase", (2,)), ("bulkUpdate", (3,))]
        nobody = [msgspec.structs.replace(e, user_identities={}) for e in every_kind()]
        assert self.transformed(nobody) == []

    def test_bulk_requests_hold_at_most_1000_items_and_4_mb(self) -> None:
        requests = self.transformed([custom(n) for n in range(2300)])
        assert [len(r.event_indices) for r in requests] == [1000, 1000, 300]
        big = [custom(n, attributes={"blob": "x" * 4000}) for n in range(1000)]
        sized = self.transformed(big)
        assert len(sized) > 1 and all(len(r.body) <= 4_000_000 for r in sized)
        assert sorted(i for r in sized for i in r.event_indices) == list(range(1000))

    def test_eu_region(self) -> None:
        settings = iterable.parse_settings({"api_key": "k", "region": "eu"})
        assert iterable.transform([custom()], settings)[0].url == "https://api.eu.iterable.com/api/events/trackBulk"
        default = iterable.parse_settings({"api_key": "k"})
        assert iterable.transform([custom()], default)[0].url == "https://api.iterable.com/api/events/trackBulk"

    def test_partial_failure_reports_failed_positions(self, capture: VendorCapture) -> None:
        other = msgspec.structs.replace(custom(2), user_identities={"email": "bad@", "customer_id": "u-2"})
        third = msgspec.structs.replace(custom(3), user_identities={"customer_id": "u-3"})
        [request] = self.transformed([custom(1), other, third], capture.url)
        answer = {"successCount": 1, "failCount": 2, "invalidEmails": ["bad@"], "invalidUserIds": [],
                  "failedUpdates": {"notFoundUserIds": ["u-3"], "invalidEmails": ["bad@"]},
                  "filteredOutFields": [], "createdFields": [], "disallowedEventNames": []}
        with httpx.Client() as client:
            capture.answer_next(1, 200, body=answer)
            result = send(client, iterable, request, 10)
            capture.answer_next(1, 200, body={"successCount": 3, "failCount": 0, "failedUpdates": {}})
            clean = send(client, iterable, request, 10)
        assert result.outcome == Outcome.ABORT and result.failed_indices == (1, 2)
        assert clean.outcome == Outcome.DELIVERED
        got = capture.requests()[0]
        assert got.method == "POST" and got.route == "/api/events/trackBulk"
        assert got.headers["api-key"] == "it-key" and got.headers["content-type"] == "application/json"
        assert all(isinstance(e["createdAt"], int) and isinstance(e["eventName"], str) for e in got.json()["events"])

    def test_error_classes(self, capture: VendorCapture) -> None:
        [request] = self.transformed([attribute_change()], capture.url)
        with httpx.Client() as client:
            capture.answer_next(1, 429, headers={"Retry-After": "2"}, body={"msg": "Rate limit exceeded"})
            throttled = send(client, iterable, request, 10)
            capture.answer_next(1, 401, body={"msg": "Invalid API key", "code": "BadApiKey"})
            unauthorized = send(client, iterable, request, 10)
            capture.answer_next(1, 400, body={"msg": "Invalid params", "code": "InvalidJsonBody"})
            invalid = send(client, iterable, request, 10)
            capture.answer_next(1, 502, body=b"bad gateway")
            server = send(client, iterable, request, 10)
        assert (throttled.outcome, throttled.retry_after_s) == (Outcome.RETRY, 2.0)
        assert unauthorized.outcome == invalid.outcome == Outcome.ABORT
        assert server.outcome == Outcome.RETRY
        assert capture.requests()[0].route == "/api/users/bulkUpdate"


def test_audience_members_are_subscribed_to_and_unsubscribed_from_the_connections_list() -> None:
    def member_of(n: int, action: str = ADD, **identities: str) -> DeliveryEvent:
        made = member(n, action, **identities)
        flags = {**(made.event.data.custom_flags or {}), SETTINGS_FLAG: {"list_id": 42}}
        return msgspec.structs.replace(made, event=msgspec.structs.replace(
            made.event, data=msgspec.structs.replace(made.event.data, custom_flags=flags)))

    settings = iterable.parse_settings({"api_key": "k"})
    requests = iterable.transform([member_of(1, email="a@x.io", customer_id="a"), member_of(2, email="b@x.io"),
                                   member_of(3, DELETE, email="a@x.io", customer_id="a"), member_of(4, other="x")],
                                  settings)
    assert [(r.url, json.loads(r.body), r.event_indices) for r in requests] == [
        ("https://api.iterable.com/api/lists/subscribe",
         {"listId": 42, "subscribers": [{"email": "a@x.io", "userId": "a", "preferUserId": True}, {"email": "b@x.io"}],
          "updateExistingUsersOnly": False}, (0, 1)),
        ("https://api.iterable.com/api/lists/unsubscribe",
         {"listId": 42, "subscribers": [{"email": "a@x.io", "userId": "a"}], "channelUnsubscribe": False}, (2,))]
    assert requests[0].headers["Api-Key"] == "k"
