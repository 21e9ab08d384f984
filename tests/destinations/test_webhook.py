"""The generic webhook destination."""

import hashlib
import hmac
import json
from typing import Any

from destinations.conformance import DestinationConformance
from support.events import custom, every_kind, on_the_web


class TestWebhook(DestinationConformance):
    name = "webhook"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"base_url": f"{base_url}/hook", "signing_secret": "s3cret", "headers": {"X-Team": "growth"}}

    def test_one_request_per_event_with_the_canonical_event(self) -> None:
        requests = self.transformed(every_kind())
        assert len(requests) == 4
        body = json.loads(requests[0].body)
        assert body["event_type"] == "custom_event"
        assert body["data"]["event_name"] == "Clicked Button"
        assert body["mpid"] == "8675310" and body["user_identities"]["customer_id"] == "cust-1"
        assert requests[0].headers["X-Team"] == "growth"
        assert requests[0].headers["Idempotency-Key"] == "00000000-0000-4000-8000-000000000001"

    def test_the_whole_context_rides_along(self) -> None:
        body = json.loads(self.transformed([on_the_web(custom())])[0].body)
        assert body["context"] == {
            "ip": "198.51.100.4",
            "device_info": {"platform": "web", "locale_language": "de", "locale_country": "DE",
                            "screen_height": 900, "screen_width": 1440,
                            "http_header_user_agent": body["context"]["device_info"]["http_header_user_agent"]},
            "page": {"url": "https://shop.example/shoes?utm_source=news", "path": "/shoes",
                     "referrer": "https://news.example/today", "title": "Shoes", "search": "?utm_source=news"},
            "campaign": {"name": "spring", "source": "news", "medium": "email", "term": "shoes", "content": "hero",
                         "other": {"adgroup": "a-7"}},
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "locale": "de-DE", "timezone": "Europe/Berlin"}
        assert body["context"]["device_info"]["http_header_user_agent"].startswith("Mozilla/5.0")

    def test_signature_is_hmac_sha256_of_timestamp_and_body(self) -> None:
        request = self.transformed([custom()])[0]
        signed = request.headers["X-Kaon-Timestamp"].encode() + b"." + request.body
        assert request.headers["X-Kaon-Signature"] == hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()

    def test_batch_mode_sends_one_request(self) -> None:
        settings = self.destination.parse_settings({"base_url": "http://vendor.test/hook", "batch": True})
        requests = self.destination.transform(every_kind(), settings)
        assert len(requests) == 1 and requests[0].event_indices == (0, 1, 2, 3)
        assert [e["event_type"] for e in json.loads(requests[0].body)["batch"]] == [
            "custom_event", "screen_view", "commerce_event", "user_attribute_change"]
        assert "X-Kaon-Signature" not in requests[0].headers
