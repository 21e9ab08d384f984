"""The official mParticle Python SDK (PyPI `mparticle` 0.16.1) against a real `kaon serve`.

What Kaon stored is read back through the admin API (`GET /api/v1/events`, `GET /api/v1/stats`). The
admin API has no view of a batch's own context (user identities, consent, data plan), so those are read
from the SQLite store the server wrote (read-only), by the `batch_id` the admin API reports.
"""

import json
import uuid
from collections import Counter
from typing import Any

import mparticle
import pytest
from mparticle.models import UserAttributeChangeEvent
from mparticle.rest import ApiException

from support import server_sdks as sdks
from support.server import KaonServer
from support.stored import marker_stored, new_tag, now_ms, stored_batch
from support.waiting import eventually

FIXED_TS = 1_700_000_002_000


def events_api(server: KaonServer, secret: str | None = None) -> mparticle.EventsApi:
    cfg = mparticle.Configuration()
    settings = sdks.mparticle_configuration(server.url, server.server_key,
                                            server.server_secret if secret is None else secret)
    for name, value in settings.items():
        setattr(cfg, name, value)
    return mparticle.EventsApi(cfg)


def batch_events(server: KaonServer, anchor_name: str, count: int) -> list[dict[str, Any]]:
    """All events stored from the batch that holds the event named `anchor_name`, once `count` are there."""

    def probe() -> list[dict[str, Any]]:
        every = server.events()
        anchors = [e for e in every if e["event_name"] == anchor_name]
        if not anchors:
            return []
        assert len(anchors) == 1, anchors
        got = [e for e in every if e["batch_id"] == anchors[0]["batch_id"]]
        return got if len(got) >= count else []

    return eventually(probe, timeout=20, what=f"{count} events of the batch holding {anchor_name!r}")


def user(tag: str, mpid: int) -> tuple[mparticle.UserIdentities, int]:
    ids = mparticle.UserIdentities()
    ids.customerid = f"cust-{tag}"
    ids.email = f"{tag}@example.com"
    return ids, mpid


def test_upload_events_stores_every_sdk_event_class(kaon_server: KaonServer) -> None:
    server = kaon_server
    tag = new_tag()
    name, screen = f"hello-{tag}", f"home-{tag}"

    batch = mparticle.Batch()
    batch.environment = "development"
    batch.mpid = 8_675_309_123
    batch.user_identities, _ = user(tag, batch.mpid)
    batch.user_attributes = {"tier": "gold", "favorite foods": ["pizza", "sushi"]}
    device = mparticle.DeviceInformation()
    device.platform = "iOS"
    device.ios_advertising_id = "613ff95e-4b2a-4f86-9a13-7e5f1d3c6d91"
    batch.device_info = device
    consent = mparticle.ConsentState()
    consent.gdpr = {"location_collection": mparticle.GDPRConsentState(
        document="doc_v1", consented=True, timestamp_unixtime_ms=1_700_000_000_000,
        location="17 Cherry Tree Lane", hardware_id="IDFA:a5d934n0")}
    consent.ccpa = {"data_sale_opt_out": mparticle.CCPAConsentState(
        consented=False, timestamp_unixtime_ms=1_700_000_000_000)}
    batch.consent_state = consent
    context = mparticle.BatchContext()
    context.data_plan = mparticle.DataPlanContext(plan_id="demo_plan", plan_version=2)
    batch.context = context

    product = mparticle.Product(id="sku-1", name="Mug", price=12.5, quantity=2)
    purchase = mparticle.ProductAction("purchase")
    purchase.transaction_id = f"T-{tag}"
    purchase.total_amount = 25.0
    purchase.products = [product]
    batch.events = [
        mparticle.SessionStartEvent(session_id=4242),
        mparticle.AppEvent(name, "navigation", custom_attributes={"button": "home"}),
        mparticle.ScreenViewEvent(screen_name=screen),
        mparticle.CommerceEvent(purchase, timestamp_unixtime_ms=FIXED_TS, currency_code="EUR"),
        UserAttributeChangeEvent(user_attribute_name="tier", new="gold", old="silver", deleted=False,
                                 is_new_attribute=False),
        mparticle.OptOutEvent(is_opted_out=True),
        mparticle.ApplicationStateTransitionEvent.create_install_event(),
        mparticle.CrashReportEvent(class_name="ValueError", severity="fatal", message="boom"),
        mparticle.BreadcrumbEvent(label=f"crumb-{tag}"),
        mparticle.PushRegistrationEvent(register=True, registration_token=f"tok-{tag}"),
        mparticle.NetworkPerformanceEvent(url="https://api.example.com/x", response_code=503, http_verb="GET"),
        mparticle.ProfileEvent(profile_event_type="login"),
        mparticle.FirstRunEvent(),
        mparticle.PushMessageEvent(push_message_type="received", message="hi", application_state="foreground"),
        mparticle.SessionEndEvent(session_duration_ms=5000),
    ]

    before = now_ms()
    _, status, _ = events_api(server).upload_events_with_http_info(batch)
    after = now_ms()
    assert status == 202

    events = batch_events(server, name, len(batch.events))
    assert Counter(e["event_type"] for e in events) == Counter({
        "session_start": 1, "custom_event": 1, "screen_view": 1, "commerce_event": 1,
        "user_attribute_change": 1, "opt_out": 1, "application_state_transition": 1,
        "crash_report": 1,  # sent by the SDK as "commerce_event"; Kaon reclassifies it
        "breadcrumb": 1, "push_registration": 1, "network_performance": 1, "profile": 1,
        "first_run": 1, "push_message": 1, "session_end": 1,
    })
    by_type = {e["event_type"]: e for e in events}

    # Names and attributes, as sent.
    assert by_type["custom_event"]["event_name"] == name
    assert by_type["custom_event"]["data"]["custom_event_type"] == "navigation"
    assert by_type["custom_event"]["data"]["custom_attributes"] == {"button": "home"}
    assert by_type["screen_view"]["event_name"] == screen
    commerce = by_type["commerce_event"]
    assert commerce["event_name"] == "purchase"
    assert commerce["data"]["currency_code"] == "EUR"
    action = commerce["data"]["product_action"]
    assert action["action"] == "purchase"
    assert action["transaction_id"] == f"T-{tag}"
    assert action["total_amount"] == 25.0
    assert action["products"] == [{"id": "sku-1", "name": "Mug", "price": 12.5, "quantity": 2}]
    crash = by_type["crash_report"]["data"]
    assert (crash["class_name"], crash["severity"], crash["message"]) == ("ValueError", "fatal", "boom")
    assert "product_action" not in crash
    change = by_type["user_attribute_change"]["data"]
    assert (change["user_attribute_name"], change["new"], change["old"]) == ("tier", "gold", "silver")
    assert by_type["opt_out"]["data"]["is_opted_out"] is True
    install = by_type["application_state_transition"]["data"]
    assert install["application_transition_type"] == "application_initialized"
    assert install["is_first_run"] is True
    assert by_type["breadcrumb"]["data"]["label"] == f"crumb-{tag}"
    assert by_type["push_registration"]["data"] == {**by_type["push_registration"]["data"],
                                                   "register": True, "registration_token": f"tok-{tag}"}
    network = by_type["network_performance"]["data"]
    assert (network["url"], network["response_code"], network["http_verb"]) == (
        "https://api.example.com/x", 503, "GET")
    assert by_type["profile"]["data"]["profile_event_type"] == "login"
    assert by_type["push_message"]["data"]["push_message_type"] == "received"
    assert by_type["session_end"]["data"]["session_duration_ms"] == 5000
    assert by_type["session_start"]["data"]["session_id"] == 4242

    # The SDK sends no timestamps (except the one set) and no message ids: Kaon fills them in.
    assert commerce["timestamp_unixtime_ms"] == FIXED_TS
    for event in events:
        if event is not commerce:
            assert before <= event["timestamp_unixtime_ms"] <= after, event
    ids = [e["source_message_id"] for e in events]
    assert all(ids) and len(set(ids)) == len(ids)
    for message_id in ids:
        uuid.UUID(message_id)
    assert {e["mpid"] for e in events} == {"8675309123"}
    assert {e["environment"] for e in events} == {"development"}
    assert {e["input_id"] for e in events} == {server.input("server")["id"]}

    # The batch's context: `customerid` (the Python SDK's spelling) is stored as `customer_id`.
    stored = stored_batch(server, events[0]["batch_id"])
    assert stored["user_identities"] == {"customer_id": f"cust-{tag}", "email": f"{tag}@example.com"}
    assert stored["user_attributes"] == {"tier": "gold", "favorite foods": ["pizza", "sushi"]}
    assert stored["consent_state"]["gdpr"]["location_collection"]["consented"] is True
    assert stored["consent_state"]["gdpr"]["location_collection"]["document"] == "doc_v1"
    assert stored["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"] is False
    assert stored["context"]["data_plan"] == {"plan_id": "demo_plan", "plan_version": 2}
    assert stored["device_info"]["ios_advertising_id"] == "613ff95e-4b2a-4f86-9a13-7e5f1d3c6d91"
    assert stored["source_info"]["channel"] == "server_to_server"


def test_bulk_upload_events_stores_each_batch_for_its_own_user(kaon_server: KaonServer) -> None:
    server = kaon_server
    tags = [new_tag() for _ in range(2)]
    batches = []
    for n, tag in enumerate(tags):
        batch = mparticle.Batch()
        batch.environment = "production"
        batch.user_identities, batch.mpid = user(tag, 1000 + n)
        batch.events = [mparticle.AppEvent(f"bulk-{tag}", "search", custom_attributes={"n": str(n)}),
                        mparticle.ScreenViewEvent(screen_name=f"bulk-screen-{tag}")]
        batches.append(batch)

    before = now_ms()
    _, status, _ = events_api(server).bulk_upload_events_with_http_info(batches)
    after = now_ms()
    assert status == 202

    batch_ids = set()
    for n, tag in enumerate(tags):
        events = batch_events(server, f"bulk-{tag}", 2)
        assert len(events) == 2
        assert {e["event_name"] for e in events} == {f"bulk-{tag}", f"bulk-screen-{tag}"}
        assert {e["mpid"] for e in events} == {str(1000 + n)}
        assert {e["environment"] for e in events} == {"production"}
        custom = next(e for e in events if e["event_type"] == "custom_event")
        assert custom["data"]["custom_event_type"] == "search"
        assert custom["data"]["custom_attributes"] == {"n": str(n)}
        assert all(before <= e["timestamp_unixtime_ms"] <= after for e in events)
        batch_id = events[0]["batch_id"]
        batch_ids.add(batch_id)
        assert stored_batch(server, batch_id)["user_identities"]["customer_id"] == f"cust-{tag}"
    assert len(batch_ids) == 2
    ids = [e["source_message_id"] for e in server.events() if e["batch_id"] in batch_ids]
    assert len(ids) == 4 and len(set(ids)) == 4


def test_wrong_secret_raises_api_exception_401_and_stores_nothing(kaon_server: KaonServer) -> None:
    server = kaon_server
    tag = new_tag()
    refused = mparticle.Batch()
    refused.environment = "development"
    refused.events = [mparticle.AppEvent(f"refused-{tag}")]

    with pytest.raises(ApiException) as raised:
        events_api(server, secret="not-the-secret").upload_events(refused)
    assert raised.value.status == 401
    assert json.loads(raised.value.body)["errors"][0]["code"] == "UNAUTHORIZED"

    marker = mparticle.Batch()
    marker.environment = "development"
    marker.events = [mparticle.AppEvent(f"marker-{tag}")]
    events_api(server).upload_events(marker)
    marker_stored(server, tag)
    assert server.events_named(f"refused-{tag}") == []


def _stats_for(server: KaonServer, input_id: str) -> dict[str, Any]:
    rows = server.listed("/stats", "stats", input_id=input_id)
    total: dict[str, Any] = {"batches_received": 0, "events_received": 0, "events_processed": 0,
                             "events_duplicate": 0, "rejected": Counter()}
    for row in rows:
        for metric in ("batches_received", "events_received", "events_processed", "events_duplicate"):
            total[metric] += row[metric]
        total["rejected"].update(row["rejected"])
    total["rejected"] = dict(total["rejected"])
    return total


def test_same_batch_sent_twice_is_stored_once_and_counted(fresh_server: KaonServer) -> None:
    server = fresh_server.start()
    input_id = server.input("server")["id"]
    tag = new_tag()
    batch = mparticle.Batch()
    batch.environment = "production"
    batch.user_identities, batch.mpid = user(tag, 77)
    message_ids = [f"dup-{tag}-{n}" for n in range(3)]
    batch.events = [
        mparticle.AppEvent(f"dup-{tag}", source_message_id=message_ids[0]),
        mparticle.ScreenViewEvent(screen_name=f"dup-screen-{tag}", source_message_id=message_ids[1]),
        mparticle.SessionEndEvent(session_duration_ms=10, source_message_id=message_ids[2]),
    ]
    api = events_api(server)
    api.upload_events(batch)
    api.upload_events(batch)
    # And one refused request from the same input: a screen view without its required screen_name.
    broken = mparticle.Batch()
    broken.environment = "production"
    broken.events = [mparticle.ScreenViewEvent()]
    with pytest.raises(ApiException) as raised:
        api.upload_events(broken)
    assert raised.value.status == 400

    expected = {"batches_received": 2, "events_received": 6, "events_processed": 3, "events_duplicate": 3,
                "rejected": {"INVALID_SHAPE": 1}}

    def counted() -> bool:
        seen = _stats_for(server, input_id)
        assert seen == expected, seen
        return True

    eventually(counted, timeout=20, what=f"stats of the server input == {expected}")
    stored = [e for e in server.events() if e["source_message_id"].startswith(f"dup-{tag}-")]
    assert sorted(e["source_message_id"] for e in stored) == message_ids
    assert {e["event_type"] for e in stored} == {"custom_event", "screen_view", "session_end"}
