"""Consent end to end against a real `kaon serve`: history, Segment consent, connection consent rules with a
webhook capture server, opt-out and back in, and the workspace's purposes."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.capture import VendorCapture
from support.server import KaonServer
from support.stores import DIALECTS, server_env
from support.waiting import eventually


@pytest.fixture(scope="module", params=DIALECTS)
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[KaonServer]:
    """One server per store dialect: consent behaves the same on SQLite and PostgreSQL."""
    running = KaonServer(tmp_path_factory.mktemp("consent"), env=server_env(request, request.param)).start()
    saved = running.admin("PUT", "/settings/consent", json={"gdpr_purposes": [
        {"name": " Marketing ", "description": "Email and ads"}, {"name": "analytics"}]})
    assert saved.status_code == 200, saved.text
    yield running
    running.stop()


def granted(consented: bool, at: int, **extra: Any) -> dict[str, Any]:
    return {"gdpr": {"marketing": {"consented": consented, "timestamp_unixtime_ms": at, **extra}}}


def post(server: KaonServer, customer: str, *events: dict[str, Any], consent: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"environment": "production", "user_identities": {"customer_id": customer},
                            "events": list(events)}
    if consent is not None:
        body["consent_state"] = consent
    sent = httpx.post(f"{server.url}/v2/events", content=json.dumps(body).encode(), headers=server.basic())
    assert sent.status_code == 202, sent.text


def custom(name: str) -> dict[str, Any]:
    return {"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other"}}


def opt_out(opted_out: bool) -> dict[str, Any]:
    return {"event_type": "opt_out", "data": {"is_opted_out": opted_out}}


def consent_of(server: KaonServer, customer: str) -> dict[str, Any]:
    found = server.profile("customer_id", customer)
    assert found is not None, customer
    shown = server.admin("GET", f"/profiles/{found['mpid']}/consent")
    assert shown.status_code == 200, shown.text
    result: dict[str, Any] = shown.json()
    return result


def connect(server: KaonServer, capture: VendorCapture, **rules: Any) -> tuple[str, str]:
    output = server.admin("POST", "/outputs", json={"name": f"hook-{uuid.uuid4().hex[:8]}", "destination": "webhook",
                                                     "settings": {"base_url": f"{capture.url}/hook"}})
    assert output.status_code == 201, output.text
    connection = server.admin("POST", "/connections", json={"input_id": server.input("server")["id"],
                                                            "output_id": output.json()["id"], **rules})
    assert connection.status_code == 201, connection.text
    return output.json()["id"], connection.json()["id"]


def delivered(capture: VendorCapture) -> list[str]:
    return [r.json()["data"].get("event_name", r.json()["event_type"]) for r in capture.requests()]


def trace(server: KaonServer, name: str, connection_id: str) -> dict[str, Any]:
    event = eventually(lambda: server.events_named(name), timeout=20, what=f"{name} stored")[0]
    traced = server.admin("GET", f"/events/{event['id']}/trace").json()
    found: dict[str, Any] = next(c for c in traced["connections"] if c["connection_id"] == connection_id)
    return found


def test_an_older_revocation_is_history_but_the_newer_grant_stays_current(server: KaonServer) -> None:
    customer = f"h-{uuid.uuid4().hex[:6]}"
    post(server, customer, consent=granted(True, 2_000_000, document="v2", location="web", hardware_id="IDFA:1"))
    post(server, customer, consent=granted(False, 1_000_000, document="v1"))
    shown = eventually(lambda: (c := consent_of(server, customer)) and len(c["history"]) == 2 and c,
                       timeout=20, what="both records in the history")
    assert shown["current"]["gdpr"]["marketing"]["consented"] is True
    assert shown["current"]["gdpr"]["marketing"]["timestamp_unixtime_ms"] == 2_000_000
    newest, older = shown["history"]
    assert (newest["consented"], newest["document"], newest["location"], newest["hardware_id"]) == (
        True, "v2", "web", "IDFA:1")
    assert (older["consented"], older["document"], older["timestamp_unixtime_ms"]) == (False, "v1", 1_000_000)
    assert newest["regulation"] == "gdpr" and newest["purpose"] == "marketing"
    assert newest["input_id"] == server.input("server")["id"] and newest["received_unixtime_ms"] > 0


def test_segment_category_preferences_update_consent(server: KaonServer) -> None:
    user = f"seg-{uuid.uuid4().hex[:6]}"
    call = {"userId": user, "event": "Viewed", "messageId": uuid.uuid4().hex,
            "context": {"consent": {"categoryPreferences": {"Marketing": True, "Analytics": False}}}}
    sent = httpx.post(f"{server.url}/v1/track", json=call, auth=(server.web_key, ""))
    assert sent.status_code == 200, sent.text
    shown = eventually(lambda: (c := consent_of(server, user)) and len(c["history"]) == 2 and c, timeout=20,
                       what="Segment consent on the profile")
    gdpr = shown["current"]["gdpr"]
    assert gdpr["marketing"]["consented"] is True and gdpr["analytics"]["consented"] is False


def test_a_marketing_connection_forwards_only_after_consent(server: KaonServer, capture: VendorCapture) -> None:
    output_id, connection_id = connect(server, capture, consent={"gdpr_purposes": ["marketing"]})
    customer, tag = f"m-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    post(server, customer, custom(f"before-{tag}"))
    assert trace(server, f"before-{tag}", connection_id) == {
        "connection_id": connection_id, "result": "filtered", "reason": "consent:gdpr:marketing"}
    post(server, customer, custom(f"granted-{tag}"), consent=granted(True, 1_000))
    post(server, customer, custom(f"after-{tag}"))  # no consent_state: the profile's consent applies
    eventually(lambda: delivered(capture) == [f"granted-{tag}", f"after-{tag}"], timeout=20,
               what="only events after the grant")
    hours = server.admin("GET", f"/outputs/{output_id}/status").json()["hours"]
    assert sum(h["filtered"].get("consent:gdpr:marketing", 0) for h in hours) == 1
    post(server, customer, custom(f"revoked-{tag}"), consent=granted(False, 2_000))
    assert trace(server, f"revoked-{tag}", connection_id)["reason"] == "consent:gdpr:marketing"
    assert f"revoked-{tag}" not in delivered(capture)


def test_opt_out_stops_forwarding_until_opted_back_in(server: KaonServer, capture: VendorCapture) -> None:
    _, connection_id = connect(server, capture)
    customer, tag = f"o-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    post(server, customer, custom(f"first-{tag}"))
    eventually(lambda: delivered(capture) == [f"first-{tag}"], timeout=20, what="first delivered")
    post(server, customer, opt_out(True))
    eventually(lambda: consent_of(server, customer)["is_opted_out"], timeout=20, what="opted out")
    post(server, customer, custom(f"muted-{tag}"))
    assert trace(server, f"muted-{tag}", connection_id)["reason"] == "opted_out"
    post(server, customer, opt_out(False))
    eventually(lambda: not consent_of(server, customer)["is_opted_out"], timeout=20, what="opted back in")
    post(server, customer, custom(f"back-{tag}"))
    eventually(lambda: f"back-{tag}" in delivered(capture), timeout=20, what="forwarding resumed")
    assert f"muted-{tag}" not in delivered(capture)


def test_purposes_are_validated(server: KaonServer, capture: VendorCapture) -> None:
    shown = server.admin("GET", "/settings/consent").json()
    assert shown["configured"] is True
    assert shown["gdpr_purposes"] == [{"name": "marketing", "description": "Email and ads"},
                                      {"name": "analytics", "description": ""}]
    twice = server.admin("PUT", "/settings/consent", json={"gdpr_purposes": [{"name": "a"}, {"name": " A "}]})
    assert twice.status_code == 400 and "gdpr_purposes[1].name" in twice.text
    unnamed = server.admin("PUT", "/settings/consent", json={"gdpr_purposes": [{"description": "x"}]})
    assert unnamed.status_code == 400
    output_id, connection_id = connect(server, capture, consent={"gdpr_purposes": ["Analytics"]})
    unknown = server.admin("POST", "/connections", json={"input_id": server.input("server")["id"],
                                                         "output_id": output_id,
                                                         "consent": {"gdpr_purposes": ["ads"]}})
    assert unknown.status_code == 400 and "'ads'" in unknown.text
    assert unknown.json()["errors"][0]["code"] == "INVALID_RULES"
    patched = server.admin("PATCH", f"/connections/{connection_id}",
                           json={"consent": {"gdpr_purposes": ["analytics", "profiling"]}})
    assert patched.status_code == 400 and "'profiling'" in patched.text
    in_use = server.admin("PUT", "/settings/consent", json={"gdpr_purposes": [{"name": "marketing"}]})
    assert in_use.status_code == 409 and "analytics" in in_use.text
    assert server.admin("GET", "/settings/consent").json()["gdpr_purposes"][1]["name"] == "analytics"


def test_unknown_purposes_are_stored_and_counted(server: KaonServer) -> None:
    customer = f"u-{uuid.uuid4().hex[:6]}"
    post(server, customer, consent={"gdpr": {"ads": {"consented": True, "timestamp_unixtime_ms": 5}}})
    shown = eventually(lambda: consent_of(server, customer)["history"], timeout=20, what="unknown purpose stored")
    assert shown[0]["purpose"] == "ads"

    def counted() -> int:
        rows = server.admin("GET", "/stats/consent").json()["unknown_purposes"]
        return sum(r["count"] for r in rows if r["purpose"] == "ads" and r["input_id"] == server.input("server")["id"])

    eventually(lambda: counted() >= 1, timeout=20, what="consent_unknown_purpose counted")
    assert all(r["purpose"] != "marketing" for r in server.admin("GET", "/stats/consent").json()["unknown_purposes"])
