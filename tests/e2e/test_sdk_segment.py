"""Segment's Python SDK (PyPI `segment-analytics-python`) against a real `kaon serve`'s /v1 doors.

The write key is the "web" input's key. Each call's mapping to canonical events is checked in what Kaon
stored: events through the admin API; the batch's user identities and attributes (which the admin API
does not show) read-only from the SQLite store, by the `batch_id` the admin API reports.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from support import server_sdks as sdks
from support.server import KaonServer
from support.stored import marker_stored, new_tag, now_ms, stored_batch, stored_by_message_id


@pytest.fixture(params=["sync_mode", "queued_then_flush"])
def segment(request: pytest.FixtureRequest, kaon_server: KaonServer) -> Iterator[Client]:
    sync = request.param == "sync_mode"
    client = Client(kaon_server.web_key, **sdks.segment_python(kaon_server.url), sync_mode=sync, max_retries=0,
                    upload_interval=0.05)
    yield client
    if not sync:
        client.shutdown()


def test_every_call_is_mapped_and_message_id_is_kept(kaon_server: KaonServer, segment: Client) -> None:
    server = kaon_server
    tag = new_tag()
    user_id = f"user-{tag}"
    before = now_ms()
    sent: dict[str, dict[str, Any]] = {}
    _, sent["track"] = segment.track(user_id, f"Clicked {tag}", {"button": "buy", "count": 2})
    _, sent["identify"] = segment.identify(user_id, {"email": f"{tag}@example.com", "plan": "pro"})
    _, sent["page"] = segment.page(user_id, "Docs", f"Intro {tag}", {"url": "https://example.com/intro"})
    _, sent["screen"] = segment.screen(user_id, name=f"Settings {tag}", properties={"tab": "privacy"})
    _, sent["group"] = segment.group(user_id, f"group-{tag}", {"name": "Acme", "employees": 50})
    _, sent["alias"] = segment.alias(f"anon-{tag}", user_id)
    _, sent["order"] = segment.track(user_id, "Order Completed", {
        "order_id": f"order-{tag}", "total": 30.0, "currency": "USD", "coupon": "SPRING",
        "products": [{"product_id": "p-1", "name": "Mug", "price": 10.0, "quantity": 3,
                      "url": "https://example.com/mug"}],
    })
    if not segment.sync_mode:
        segment.flush()
    after = now_ms()

    mid = {call: str(msg["messageId"]) for call, msg in sent.items()}
    assert len(set(mid.values())) == len(mid)
    identify_ids = {f"{mid['identify']}:identity:customer_id", f"{mid['identify']}:identity:email",
                    f"{mid['identify']}:attribute:email", f"{mid['identify']}:attribute:plan"}
    wanted = {mid[c] for c in ("track", "page", "screen", "group", "alias", "order")} | identify_ids
    stored = stored_by_message_id(server, wanted)
    assert len([e for e in server.events() if e["source_message_id"].startswith(mid["identify"])]) == 4

    for event in stored.values():
        assert before <= event["timestamp_unixtime_ms"] <= after, event
        assert event["input_id"] == server.input("web")["id"]
        assert stored_batch(server, event["batch_id"])["user_identities"]["customer_id"] == user_id

    track = stored[mid["track"]]
    assert (track["event_type"], track["event_name"]) == ("custom_event", f"Clicked {tag}")
    assert track["data"]["custom_attributes"] == {"button": "buy", "count": 2}

    page = stored[mid["page"]]
    assert (page["event_type"], page["event_name"]) == ("screen_view", f"Docs Intro {tag}")
    assert page["data"]["custom_attributes"] == {"url": "https://example.com/intro"}
    screen = stored[mid["screen"]]
    assert (screen["event_type"], screen["event_name"]) == ("screen_view", f"Settings {tag}")
    assert screen["data"]["custom_attributes"] == {"tab": "privacy"}

    group = stored[mid["group"]]
    assert group["event_type"] == "group"
    assert group["data"]["group_id"] == f"group-{tag}"
    assert group["data"]["traits"] == {"name": "Acme", "employees": 50}

    alias = stored[mid["alias"]]
    assert alias["event_type"] == "alias"
    assert (alias["data"]["previous_id"], alias["data"]["user_id"]) == (f"anon-{tag}", user_id)

    identity = stored[f"{mid['identify']}:identity:email"]
    assert identity["event_type"] == "user_identity_change"
    assert identity["data"]["new"]["identity_type"] == "email"
    assert identity["data"]["new"]["identity"] == f"{tag}@example.com"
    assert stored[f"{mid['identify']}:identity:customer_id"]["data"]["new"]["identity"] == user_id
    plan = stored[f"{mid['identify']}:attribute:plan"]
    assert plan["event_type"] == "user_attribute_change"
    assert (plan["data"]["user_attribute_name"], plan["data"]["new"]) == ("plan", "pro")
    context = stored_batch(server, plan["batch_id"])
    assert context["user_identities"] == {"customer_id": user_id, "email": f"{tag}@example.com"}
    assert context["user_attributes"] == {"email": f"{tag}@example.com", "plan": "pro"}

    order = stored[mid["order"]]
    assert (order["event_type"], order["event_name"]) == ("commerce_event", "Order Completed")
    action = order["data"]["product_action"]
    assert action["action"] == "purchase"
    assert action["transaction_id"] == f"order-{tag}"
    assert action["total_amount"] == 30.0
    assert action["coupon_code"] == "SPRING"
    assert order["data"]["currency_code"] == "USD"
    assert action["products"] == [{"id": "p-1", "name": "Mug", "price": 10.0, "quantity": 3.0,
                                   "custom_attributes": {"url": "https://example.com/mug"}}]


def test_server_input_key_as_write_key_is_refused_with_401(kaon_server: KaonServer) -> None:
    server = kaon_server
    tag = new_tag()

    with pytest.raises(APIError) as raised:
        Client(server.server_key, **sdks.segment_python(server.url), sync_mode=True).track(
            f"u-{tag}", f"refused-sync-{tag}")
    assert raised.value.status == 401

    errors: list[tuple[Exception, list[dict[str, Any]]]] = []
    queued = Client(server.server_key, **sdks.segment_python(server.url), max_retries=0, upload_interval=0.05,
                    on_error=lambda error, batch: errors.append((error, batch)))
    try:
        queued.track(f"u-{tag}", f"refused-queued-{tag}")
        queued.flush()
    finally:
        queued.shutdown()
    assert len(errors) == 1
    error, batch = errors[0]
    assert isinstance(error, APIError) and error.status == 401
    assert [m["event"] for m in batch] == [f"refused-queued-{tag}"]

    Client(server.web_key, **sdks.segment_python(server.url), sync_mode=True).track(f"u-{tag}", f"marker-{tag}")
    marker_stored(server, tag)
    assert server.events_named(f"refused-sync-{tag}") == []
    assert server.events_named(f"refused-queued-{tag}") == []
