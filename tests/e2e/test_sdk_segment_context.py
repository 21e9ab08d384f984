"""Segment's context and revenue end to end: Segment's Python SDK (PyPI `segment-analytics-python`) → a real
`kaon serve` → Amplitude, Mixpanel, GA4 and Meta (local capture servers), asserted as each vendor documents its
fields; and the context as the admin API shows it.
"""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from segment.analytics import Client

from support.capture import Captured, VendorCapture
from support.server import KaonServer
from support.waiting import eventually

AGENT = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36")
PAGE = {"url": "https://shop.example/pricing?utm_source=newsletter", "path": "/pricing",
        "referrer": "https://news.example/today", "title": "Pricing", "search": "?utm_source=newsletter"}
CONTEXT: dict[str, Any] = {
    "page": PAGE, "ip": "198.51.100.4", "userAgent": AGENT, "locale": "de-DE", "timezone": "Europe/Berlin",
    "campaign": {"name": "spring-sale", "source": "newsletter", "medium": "email", "term": "shoes",
                 "content": "hero"},
}
SETTINGS: dict[str, dict[str, Any]] = {
    "amplitude": {"api_key": "am-key"},
    "mixpanel": {"project_token": "mp-token"},
    "ga4": {"measurement_id": "G-TEST", "api_secret": "ga-secret"},
    "meta_capi": {"pixel_id": "1234567890", "access_token": "EAAB-token"},
}


@pytest.fixture(scope="module")
def vendors(kaon_server: KaonServer) -> Iterator[dict[str, VendorCapture]]:
    """One capture server per vendor, each an output connected to the web input (the SDK's write key)."""
    started = {name: VendorCapture().start() for name in SETTINGS}
    try:
        for name, capture in started.items():
            output = kaon_server.admin("POST", "/outputs", json={
                "name": f"{name}-{uuid.uuid4().hex[:6]}", "destination": name,
                "settings": {**SETTINGS[name], "base_url": capture.url}})
            assert output.status_code == 201, output.text
            connection = kaon_server.admin("POST", "/connections", json={
                "input_id": kaon_server.input("web")["id"], "output_id": output.json()["id"]})
            assert connection.status_code == 201, connection.text
        yield started
    finally:
        for capture in started.values():
            capture.stop()


@pytest.fixture(scope="module")
def sent(kaon_server: KaonServer, vendors: dict[str, VendorCapture]) -> dict[str, Any]:
    """A signup that made money, a page view and an order, each with the browser's context."""
    tag = uuid.uuid4().hex[:8]
    segment = Client(kaon_server.web_key, host=kaon_server.url, sync_mode=True, max_retries=0)
    user = f"ctx-{tag}"
    segment.track(user, f"Signed Up {tag}", {"plan": "pro", "revenue": 19.99, "currency": "EUR"}, context=CONTEXT)
    segment.page(user, "Docs", f"Pricing {tag}", {"tab": "annual"}, context=CONTEXT)
    segment.track(user, "Order Completed", {
        "order_id": f"order-{tag}", "total": 30.0, "revenue": 25.0, "currency": "USD",
        "products": [{"product_id": "p-1", "name": "Mug", "price": 12.5, "quantity": 2}]}, context=CONTEXT)
    return {"tag": tag, "user": user}


def received(capture: VendorCapture, find: Any) -> list[Any]:
    return [found for request in capture.requests() for found in find(request)]


def amplitude_events(request: Captured) -> list[dict[str, Any]]:
    return list(request.json()["events"]) if request.route == "/2/httpapi" else []


def mixpanel_records(request: Captured) -> list[dict[str, Any]]:
    return list(request.json()) if request.route == "/import" else []


def ga4_bodies(request: Captured) -> list[dict[str, Any]]:
    return [request.json()] if request.route == "/mp/collect" else []


def meta_events(request: Captured) -> list[dict[str, Any]]:
    return list(request.json()["data"])


def wait_for(capture: VendorCapture, find: Any, count: int, what: str) -> list[Any]:
    eventually(lambda: len(received(capture, find)) >= count, timeout=45, what=what)
    return received(capture, find)


def test_amplitude_gets_ip_platform_language_utm_and_revenue(vendors: dict[str, VendorCapture],
                                                             sent: dict[str, Any]) -> None:
    tag = sent["tag"]
    events = wait_for(vendors["amplitude"], amplitude_events, 3, "three Amplitude events")
    by_type = {e["event_type"]: e for e in events}
    signup = by_type[f"Signed Up {tag}"]
    assert (signup["user_id"], signup["ip"], signup["platform"], signup["language"]) == (
        sent["user"], "198.51.100.4", "Web", "de-DE")
    assert (signup["revenue"], signup["currency"], signup["revenueType"]) == (19.99, "EUR", "Purchased")
    assert signup["event_properties"] == {
        "plan": "pro", "currency": "EUR", "utm_source": "newsletter", "utm_medium": "email",
        "utm_campaign": "spring-sale", "utm_term": "shoes", "utm_content": "hero",
        "referrer": "https://news.example/today"}
    order = by_type["Order Completed"]
    assert order["revenue"] == 25.0  # the order's revenue, not its total (30)
    page = by_type[f"Viewed Docs Pricing {tag} Screen"]
    assert page["event_properties"]["url"] == PAGE["url"] and page["event_properties"]["tab"] == "annual"


def test_mixpanel_gets_page_utm_ip_os_browser_and_revenue(vendors: dict[str, VendorCapture],
                                                         sent: dict[str, Any]) -> None:
    tag = sent["tag"]
    records = wait_for(vendors["mixpanel"], mixpanel_records, 3, "three Mixpanel records")
    by_name = {r["event"]: r["properties"] for r in records}
    signup = by_name[f"Signed Up {tag}"]
    assert {k: signup[k] for k in ("$current_url", "$referrer", "utm_source", "utm_medium", "utm_campaign",
                                   "utm_term", "utm_content", "ip", "$os", "$browser", "revenue", "currency")} == {
        "$current_url": PAGE["url"], "$referrer": PAGE["referrer"], "utm_source": "newsletter",
        "utm_medium": "email", "utm_campaign": "spring-sale", "utm_term": "shoes", "utm_content": "hero",
        "ip": "198.51.100.4", "$os": "Mac OS X", "$browser": "Chrome", "revenue": 19.99, "currency": "EUR"}
    assert signup["mp_lib"] == "analytics-python"  # the SDK's own `context.library`
    assert by_name["Order Completed"]["revenue"] == 25.0


def test_ga4_gets_page_campaign_value_and_ip(vendors: dict[str, VendorCapture], sent: dict[str, Any]) -> None:
    tag = sent["tag"]
    eventually(lambda: sum(len(b["events"]) for b in received(vendors["ga4"], ga4_bodies)) >= 3, timeout=45,
               what="three GA4 events")
    bodies = received(vendors["ga4"], ga4_bodies)
    assert {b["ip_override"] for b in bodies} == {"198.51.100.4"}
    assert bodies[0]["device"]["browser"] == "Chrome" and bodies[0]["device"]["language"] == "de-DE"
    by_name = {e["name"]: e["params"] for b in bodies for e in b["events"]}
    signup = by_name[f"signed_up_{tag}"]
    assert {k: signup[k] for k in ("page_location", "page_referrer", "page_title", "campaign", "source", "medium",
                                   "term", "content", "value", "currency")} == {
        "page_location": PAGE["url"], "page_referrer": PAGE["referrer"], "page_title": "Pricing",
        "campaign": "spring-sale", "source": "newsletter", "medium": "email", "term": "shoes", "content": "hero",
        "value": 19.99, "currency": "EUR"}
    assert (by_name["purchase"]["value"], by_name["purchase"]["currency"]) == (25.0, "USD")
    assert by_name["page_view"]["page_title"] == "Pricing"


def test_meta_gets_source_url_agent_ip_and_value(vendors: dict[str, VendorCapture], sent: dict[str, Any]) -> None:
    tag = sent["tag"]
    events = wait_for(vendors["meta_capi"], meta_events, 3, "three Conversions API events")
    by_name = {e["event_name"]: e for e in events}
    signup = by_name[f"Signed Up {tag}"]
    assert (signup["action_source"], signup["event_source_url"]) == ("website", PAGE["url"])
    assert (signup["user_data"]["client_user_agent"], signup["user_data"]["client_ip_address"]) == (
        AGENT, "198.51.100.4")
    assert (signup["custom_data"]["value"], signup["custom_data"]["currency"]) == (19.99, "EUR")
    assert by_name["Purchase"]["custom_data"]["value"] == 25.0


def test_the_admin_api_shows_each_events_context(kaon_server: KaonServer, vendors: dict[str, VendorCapture],
                                                 sent: dict[str, Any]) -> None:
    tag = sent["tag"]
    eventually(lambda: len(kaon_server.events(since="1h", event_name=f"Signed Up {tag}")) == 1, timeout=30,
               what="the signup stored")
    [signup] = kaon_server.events(since="1h", event_name=f"Signed Up {tag}")
    context = signup["context"]
    assert context["page"] == PAGE
    assert context["campaign"] == CONTEXT["campaign"]
    assert (context["ip"], context["locale"], context["timezone"]) == ("198.51.100.4", "de-DE", "Europe/Berlin")
    assert context["library"]["name"] == "analytics-python"
    assert context["device_info"]["http_header_user_agent"] == AGENT
    assert signup["data"]["custom_attributes"] == {"plan": "pro", "revenue": 19.99, "currency": "EUR"}
