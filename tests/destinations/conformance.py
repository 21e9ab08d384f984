"""The conformance tests every destination's test class inherits (one subclass line per destination)."""

import copy
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import msgspec
import pytest

from kaon.delivery.send import send
from kaon.destinations.base import Destination, redact, secret_fields
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome
from kaon.destinations.registry import destinations
from support.capture import VendorCapture
from support.events import every_kind


class VendorTests:
    """What every destination test class has: the destination by `name`, its `settings(base_url)`, a capture
    server standing in for the vendor, and the transform of some events."""

    name: ClassVar[str]
    retry_statuses: ClassVar[tuple[int, ...]] = (429, 503)
    abort_status: ClassVar[int | None] = 400

    def settings(self, base_url: str) -> dict[str, Any]:
        raise NotImplementedError

    @pytest.fixture
    def capture(self) -> Iterator[VendorCapture]:
        server = VendorCapture().start()
        yield server
        server.stop()

    @property
    def destination(self) -> Destination:
        return destinations()[self.name]

    def transformed(self, events: list[DeliveryEvent], base_url: str = "http://vendor.test") -> list[Any]:
        settings = self.destination.parse_settings(self.settings(base_url))
        return self.destination.transform(events, settings)

    def test_settings_are_documented_and_have_a_base_url(self) -> None:
        schema = self.destination.settings_schema()
        props = schema["$defs"][schema["$ref"].split("/")[-1]]["properties"]
        assert "base_url" in props
        for field, spec in props.items():
            assert spec.get("title") and spec.get("description"), f"setting {field} needs title and description"
        assert self.destination.title and self.destination.description and self.destination.category

    def test_invalid_settings_are_refused(self) -> None:
        with pytest.raises((msgspec.ValidationError, ValueError)):
            self.destination.parse_settings({"base_url": 42, "no_such_setting": True})

    def test_secrets_are_marked_and_redacted(self) -> None:
        settings = self.settings("http://vendor.test")
        shown = redact(self.destination, settings)
        for name in secret_fields(self.destination):
            value = settings.get(name)
            if isinstance(value, dict):  # a map of secrets (webhook headers): names kept, values hidden
                assert shown[name] == dict.fromkeys(value, "********")
            elif value:
                assert shown[name] == "********"


class DestinationConformance(VendorTests):
    """Subclass with `name` and `settings(base_url)`; override `retry_statuses`/`abort_status` if needed."""

    def test_registered_through_the_entry_point_group(self) -> None:
        assert self.name in destinations()

    def test_transform_is_pure(self) -> None:
        events = every_kind()
        before = copy.deepcopy([msgspec.to_builtins(e) for e in events])
        first, second = self.transformed(events), self.transformed(events)
        assert first == second
        assert [msgspec.to_builtins(e) for e in events] == before

    def test_requests_go_to_the_base_url_and_cover_events_once(self) -> None:
        events = every_kind()
        requests = self.transformed(events, "http://vendor.test/base")
        assert requests, "at least one of the standard event kinds must map"
        covered = [i for r in requests for i in r.event_indices]
        assert len(covered) == len(set(covered)), "an event must not be sent twice"
        for request in requests:
            assert request.url.startswith("http://vendor.test/base")

    def test_delivers_to_the_vendor(self, capture: VendorCapture) -> None:
        requests = self.transformed(every_kind(), capture.url)
        with httpx.Client() as client:
            results = [send(client, self.destination, r, 10) for r in requests]
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * len(requests)
        got = capture.requests()
        assert [(g.method, g.body) for g in got] == [(r.method, r.body) for r in requests]

    def test_retry_classes(self, capture: VendorCapture) -> None:
        request = self.transformed(every_kind()[:1], capture.url)[0]
        with httpx.Client() as client:
            for status in self.retry_statuses:
                capture.answer_next(1, status, headers={"Retry-After": "7"}, body={"error": "later"})
                result = send(client, self.destination, request, 10)
                assert result.outcome == Outcome.RETRY, (status, result)
                if status == 429:
                    assert result.retry_after_s == 7, result
            if self.abort_status is not None:
                capture.answer_next(1, self.abort_status, body={"error": "bad"})
                assert send(client, self.destination, request, 10).outcome == Outcome.ABORT
