"""Segment's Python SDK (PyPI `segment-analytics-python`) against a real `kaon serve`'s /v1 doors.

The write key is the "web" input's key. Each call's mapping to canonical events is checked in what Kaon
stored: events through the admin API; the batch's user identities and attributes (which the admin API
does not show) read-only from the SQLite store, by the `batch_id` the admin API reports.
"""

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from support import server_sdks as sdks
from support.server import KaonServer
from support.stored import check_calls_stored, marker_stored, new_tag, now_ms, stored_batch, stored_by_message_id
from support.waiting import eventually


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

    check_calls_stored(server, stored, since_ms=before, until_ms=after, customer_id=user_id)

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


def profile_events(server: KaonServer, mpid: str) -> set[str]:
    response = server.admin("GET", f"/profiles/{mpid}/events")
    assert response.status_code == 200, response.text
    return {e["event_name"] or e["event_type"] for e in response.json()["events"]}


def test_alias_joins_the_anonymous_history_to_the_user_and_a_refusal_is_listed(
        kaon_server: KaonServer, segment: Client) -> None:
    server = kaon_server
    tag = new_tag()
    anonymous_id, user_id = f"anon-{tag}", f"user-{tag}"
    segment.track(anonymous_id=anonymous_id, event=f"browse {tag}")
    segment.track(anonymous_id=anonymous_id, event=f"add to cart {tag}")
    segment.identify(user_id, {"email": f"{tag}@example.com"})
    if not segment.sync_mode:
        segment.flush()
    anonymous = eventually(lambda: server.profile("device_application_stamp", anonymous_id), timeout=20,
                           what="the anonymous profile")
    eventually(lambda: server.profile("customer_id", user_id), timeout=20, what="the user's profile")
    assert profile_events(server, anonymous["mpid"]) == {f"browse {tag}", f"add to cart {tag}"}

    segment.alias(anonymous_id, user_id)
    segment.alias(f"never-seen-{tag}", user_id)
    if not segment.sync_mode:
        segment.flush()

    def joined() -> dict[str, Any] | None:
        found = server.profile("customer_id", user_id)
        return found if found and {f"browse {tag}", f"add to cart {tag}"} <= profile_events(server, found["mpid"]) \
            else None

    user = eventually(joined, timeout=20, what="the anonymous events on the user's profile")
    assert {i["value"] for i in user["device_identities"]} == {anonymous_id}
    # The anonymous profile's mpid now resolves to the user's (it was merged: the audit row says why).
    assert server.admin("GET", f"/profiles/{anonymous['mpid']}").json()["mpid"] == user["mpid"]
    merges = server.admin("GET", f"/profiles/{user['mpid']}/merges").json()["merges"]
    assert [(m["merged_mpid"], m["reason"]) for m in merges] == [
        (anonymous["mpid"], f"alias: previousId {anonymous_id!r} joined to userId {user_id!r}")]

    def refusal() -> dict[str, Any] | None:
        return next((r for r in server.listed("/rejections", "rejections")
                     if r["code"] == "ALIAS_REFUSED_UNKNOWN_PREVIOUS" and f"never-seen-{tag}" in r["message"]), None)

    refused = eventually(refusal, timeout=20, what="the refused alias listed")
    assert refused["status"] == 200 and refused["input_id"] == server.input("web")["id"]
    assert f"nothing was joined to profile {user['mpid']} (userId {user_id!r})" in refused["message"]
    totals: Counter[str] = Counter()
    for row in server.listed("/stats", "stats"):
        totals.update({f"refused:{k}": v for k, v in row["alias_refused"].items()})
        totals.update({f"applied:{k}": v for k, v in row["aliases_applied"].items()})
    assert totals["refused:unknown_previous"] >= 1 and totals["applied:merged"] >= 1
