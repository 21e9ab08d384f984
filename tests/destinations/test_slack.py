"""Slack incoming webhook: templates, allow-list, escaping, one message per event, error classes."""

import json
from typing import Any

import httpx

from destinations.conformance import DestinationConformance
from kaon.delivery.send import send
from kaon.destinations.base import secret_fields
from kaon.destinations.outcome import Outcome
from kaon.destinations.slack import destination as slack
from support.capture import VendorCapture
from support.events import attribute_change, custom, every_kind, purchase, screen

HOOK = "/services/T000/B000/XXXX"


class TestSlack(DestinationConformance):
    name = "slack"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"base_url": f"{base_url}{HOOK}"}

    def text(self, item: Any, **settings: Any) -> str:
        parsed = slack.parse_settings({**self.settings("http://vendor.test"), **settings})
        [request] = slack.transform([item], parsed)
        body: dict[str, str] = json.loads(request.body)
        return body["text"]

    def test_the_webhook_url_is_the_secret(self) -> None:
        assert "base_url" in secret_fields(slack)

    def test_default_template_for_each_kind(self) -> None:
        assert self.text(custom()) == '*Clicked Button* (custom_event) by cust-1 (mpid 8675310): {"color":"blue","n":3}'
        assert self.text(screen()).startswith("*Home* (screen_view)")
        assert '"transaction_id":"T-1"' in self.text(purchase()) and self.text(purchase()).startswith("*purchase*")
        assert self.text(attribute_change()).startswith('*tier* (user_attribute_change)')
        assert '"new":"platinum"' in self.text(attribute_change())

    def test_placeholders_are_safe(self) -> None:
        template = "{event_name}|{attributes.color}|{user.tier}|{unknown}|{event_name.__class__}|{0}|{{x}}"
        assert self.text(custom(), template=template) == \
            "Clicked Button|blue|gold|{unknown}|{event_name.__class__}|{0}|{{x}}"
        hostile = custom(name="<!channel> & <https://evil|click>")
        assert self.text(hostile, template="{event_name}") == "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"

    def test_allow_list_skips_other_events(self) -> None:
        settings = slack.parse_settings({**self.settings("http://vendor.test"), "events": ["Clicked*", "purchase"]})
        requests = slack.transform(every_kind(), settings)
        assert [r.event_indices for r in requests] == [(0,), (2,)]
        by_type = slack.parse_settings({**self.settings("http://vendor.test"), "events": ["user_attribute_change"]})
        assert [r.event_indices for r in slack.transform(every_kind(), by_type)] == [(3,)]

    def test_optional_channel_username_icon(self) -> None:
        settings = slack.parse_settings({**self.settings("http://vendor.test"), "channel": "#alerts",
                                         "username": "Kaon", "icon_emoji": ":bell:"})
        body = json.loads(slack.transform([custom()], settings)[0].body)
        assert body["channel"] == "#alerts" and body["username"] == "Kaon" and body["icon_emoji"] == ":bell:"

    def test_one_message_per_event_at_one_per_second(self) -> None:
        requests = self.transformed([custom(n) for n in range(3)])
        assert [r.event_indices for r in requests] == [(0,), (1,), (2,)]
        assert slack.policy.batch_size == 1 and slack.policy.rate_limit_rps == 1.0

    def test_wire_request_and_error_classes(self, capture: VendorCapture) -> None:
        [request] = self.transformed([custom()], capture.url)
        with httpx.Client() as client:
            capture.answer_next(1, 200, headers={"Content-Type": "text/html"}, body=b"ok")
            ok = send(client, slack, request, 10)
            capture.answer_next(1, 429, headers={"Retry-After": "5"}, body=b"rate_limited")
            throttled = send(client, slack, request, 10)
            capture.answer_next(1, 400, body=b"invalid_payload")
            invalid = send(client, slack, request, 10)
            capture.answer_next(1, 404, body=b"no_service")
            gone = send(client, slack, request, 10)
            capture.answer_next(1, 503, body=b"")
            server = send(client, slack, request, 10)
        assert ok.outcome == Outcome.DELIVERED
        assert (throttled.outcome, throttled.retry_after_s) == (Outcome.RETRY, 5.0)
        assert invalid.outcome == Outcome.ABORT and "invalid_payload" in invalid.message
        assert gone.outcome == Outcome.ABORT and "no_service" in gone.message
        assert server.outcome == Outcome.RETRY
        got = capture.requests()[0]
        assert got.method == "POST" and got.route == HOOK
        assert got.headers["content-type"] == "application/json"
        assert isinstance(got.json()["text"], str)
