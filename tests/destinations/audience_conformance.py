"""The conformance tests every audience output's test class inherits (one subclass line per destination)."""

import copy

import httpx
import msgspec

from destinations.conformance import VendorTests
from kaon.activation.membership import ADD, DELETE, membership_event
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from support.capture import VendorCapture
from support.events import T0, every_kind

IDENTITIES = {"customer_id": "cust-1", "email": "Ada.Lovelace@Example.com ", "mobile_number": "+44 (0)20 7946 0958",
              "ios_advertising_id": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}


def member(n: int, action: str = ADD, **identities: str) -> DeliveryEvent:
    """Profile `n` added to (or removed from) audience `aud_1` ("Cart abandoners")."""
    return membership_event(workspace_id="ws", connection_id="acn_1", audience_id="aud_1",
                            audience_name="Cart abandoners", action=action, cause="event", mpid=8675309 + n,
                            at_ms=T0 + n * 1000, identities=identities or IDENTITIES, attributes={},
                            message_id=f"acn_1-{n}-{action}")


def changes() -> list[DeliveryEvent]:
    return [member(1), member(2, email="grace@example.com"), member(1, DELETE), member(3, customer_id="c-3")]


class AudienceConformance(VendorTests):
    """Subclass with `name` and `settings(base_url)`."""

    def test_registered_as_an_audience_output_with_the_identities_it_sends(self) -> None:
        assert self.destination.audience and self.destination.identity_types

    def test_transform_is_pure_and_covers_each_change_once_in_order(self) -> None:
        events = changes()
        before = copy.deepcopy([msgspec.to_builtins(e) for e in events])
        first, second = self.transformed(events), self.transformed(events)
        assert first == second and [msgspec.to_builtins(e) for e in events] == before
        covered = [i for r in first for i in r.event_indices]
        assert sorted(covered) == [0, 1, 2, 3] and covered == sorted(covered), "each change once, in order"

    def test_other_events_are_not_membership_changes(self) -> None:
        assert self.transformed(every_kind()) == []

    def test_delivers_to_the_vendor(self, capture: VendorCapture) -> None:
        requests = self.transformed(changes(), capture.url)
        with httpx.Client() as client:
            results = [send(client, self.destination, r, 10) for r in requests]
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * len(requests)
        assert [(g.method, g.body) for g in capture.requests()] == [(r.method, r.body) for r in requests]

    def test_retry_classes(self, capture: VendorCapture) -> None:
        request = self.transformed(changes()[:1], capture.url)[0]
        with httpx.Client() as client:
            for status in self.retry_statuses:
                capture.answer_next(1, status, headers={"Retry-After": "7"}, body={"error": "later"})
                result = send(client, self.destination, request, 10)
                assert result.outcome == Outcome.RETRY, (status, result)
            if self.abort_status is not None:
                capture.answer_next(1, self.abort_status, body={"error": "bad"})
                assert send(client, self.destination, request, 10).outcome == Outcome.ABORT
