"""Kaon's own Python client (`kaon.client.Kaon`) against a real `kaon serve`.

Each test uses its own random mpid, so its events are found among the shared workspace's by mpid. The
batches' user identities and attributes (not in the admin API) are read-only from the SQLite store.
"""

import random
import uuid
from typing import Any

from kaon.client import Kaon, Product, RejectedError
from support import server_sdks as sdks
from support.server import KaonServer
from support.stored import marker_stored, new_tag, now_ms, stored_batch
from support.waiting import eventually


def events_of(server: KaonServer, mpid: int, count: int) -> list[dict[str, Any]]:
    """The user's stored events, oldest first, once `count` are there."""

    def probe() -> list[dict[str, Any]]:
        got = [e for e in server.events() if e["mpid"] == str(mpid)]
        assert len(got) >= count, f"{len(got)} of {count} events"
        return got

    return list(reversed(eventually(probe, timeout=20, what=f"{count} events of mpid {mpid}")))


def test_every_call_is_stored_for_the_identified_user(kaon_server: KaonServer) -> None:
    server = kaon_server
    tag = new_tag()
    mpid = random.randrange(1, 2**62)
    before = now_ms()
    client = Kaon(server.server_key, server.server_secret, **sdks.kaon_client(server.url), flush_interval=0.05)
    try:
        client.identify(f"cust-{tag}", f"{tag}@example.com", mpid=mpid)
        client.set_user_attribute("plan", "pro")
        client.set_user_attribute("tags", ["a", "b"])
        client.log_event(f"clicked-{tag}", {"button": "buy", "n": 2}, event_type="navigation")
        client.log_screen(f"screen-{tag}", {"tab": "home"})
        client.log_commerce("purchase", [Product("sku-1", "Mug", 12.5, quantity=2)],
                            transaction_id=f"T-{tag}", total_amount=25.0, currency_code="EUR")
        client.remove_user_attribute("plan")
        result = client.flush(timeout=20)
    finally:
        client.close(timeout=20)
    after = now_ms()
    assert (result.ok, result.sent, result.failed) == (True, 6, 0), result

    events = events_of(server, mpid, 6)
    assert len(events) == 6
    assert [e["event_type"] for e in events] == [
        "user_attribute_change", "user_attribute_change", "custom_event", "screen_view", "commerce_event",
        "user_attribute_change"]
    set_plan, set_tags, custom, screen, commerce, removed = events
    assert (set_plan["data"]["user_attribute_name"], set_plan["data"]["new"]) == ("plan", "pro")
    assert set_plan["data"]["is_new_attribute"] is True
    assert (set_tags["data"]["user_attribute_name"], set_tags["data"]["new"]) == ("tags", ["a", "b"])
    assert custom["event_name"] == f"clicked-{tag}"
    assert custom["data"]["custom_event_type"] == "navigation"
    assert custom["data"]["custom_attributes"] == {"button": "buy", "n": 2}
    assert screen["event_name"] == f"screen-{tag}"
    assert screen["data"]["custom_attributes"] == {"tab": "home"}
    assert commerce["event_name"] == "purchase"
    assert commerce["data"]["currency_code"] == "EUR"
    action = commerce["data"]["product_action"]
    assert (action["action"], action["transaction_id"], action["total_amount"]) == (
        "purchase", f"T-{tag}", 25.0)
    assert action["products"] == [{"id": "sku-1", "name": "Mug", "price": 12.5, "quantity": 2}]
    assert removed["data"]["user_attribute_name"] == "plan"
    assert removed["data"]["deleted"] is True
    assert removed["data"]["old"] == "pro"

    ids = [e["source_message_id"] for e in events]
    assert len(set(ids)) == 6
    for event in events:
        uuid.UUID(event["source_message_id"])
        assert before <= event["timestamp_unixtime_ms"] <= after
        assert event["environment"] == "production"
        assert event["input_id"] == server.input("server")["id"]
        context = stored_batch(server, event["batch_id"])
        assert context["user_identities"] == {"customer_id": f"cust-{tag}", "email": f"{tag}@example.com"}
    last = stored_batch(server, removed["batch_id"])
    assert last.get("user_attributes", {}) == {"tags": ["a", "b"]}
    assert last["deleted_user_attributes"] == ["plan"]


def test_wrong_secret_is_reported_not_raised_and_nothing_is_stored(kaon_server: KaonServer) -> None:
    server = kaon_server
    tag = new_tag()
    reported: list[Exception] = []
    client = Kaon(server.server_key, "not-the-secret", **sdks.kaon_client(server.url), flush_interval=0.05,
                  max_retries=0, on_error=reported.append)
    try:
        client.log_event(f"refused-{tag}")
        client.log_screen(f"refused-screen-{tag}")
        result = client.flush(timeout=20)
    finally:
        client.close(timeout=20)
    assert (result.ok, result.sent, result.failed) == (False, 0, 2), result
    assert [type(e) for e in result.errors] == [RejectedError]
    assert result.errors[0].status == 401
    assert result.errors[0].server_code == "UNAUTHORIZED"
    assert result.errors[0].events == 2
    assert [type(e) for e in reported] == [RejectedError]

    with Kaon(server.server_key, server.server_secret, **sdks.kaon_client(server.url), flush_interval=0.05) as good:
        good.log_event(f"marker-{tag}")
    marker_stored(server, tag)
    assert server.events_named(f"refused-{tag}") == []
    assert server.events_named(f"refused-screen-{tag}") == []
