"""The worked cart-abandonment example of docs/audiences.md, exactly as written there, through a real `kaon serve`
on both store dialects: events sent by the official mParticle Python SDK, an audience connected to Meta Custom
Audiences (with a consent rule) and to Braze (a trigger), capture servers standing in for both vendors."""

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mparticle
import pytest

from support import server_sdks as sdks
from support.capture import Captured, VendorCapture
from support.server import KaonServer
from support.stores import DIALECTS, server_env
from support.waiting import eventually

DOC = Path(__file__).resolve().parents[2] / "docs" / "audiences.md"


def example(name: str) -> dict[str, Any]:
    """The JSON block under `<!-- example: name -->` in docs/audiences.md."""
    found = re.search(rf"<!-- example: {re.escape(name)} -->\n```json\n(.*?)\n```", DOC.read_text(), re.S)
    assert found, f"docs/audiences.md has no example {name!r}"
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


@pytest.fixture(scope="module", params=DIALECTS)
def kaon_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[KaonServer]:
    server = KaonServer(tmp_path_factory.mktemp("activation"), env=server_env(request, request.param)).start()
    yield server
    server.stop()


@pytest.fixture
def vendors() -> Iterator[tuple[VendorCapture, VendorCapture]]:
    meta, braze = VendorCapture().start(), VendorCapture().start()
    yield meta, braze
    meta.stop()
    braze.stop()


def created(server: KaonServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = server.admin("POST", path, json=body)
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def events_api(server: KaonServer) -> mparticle.EventsApi:
    cfg = mparticle.Configuration()
    for name, value in sdks.mparticle_configuration(server.url, server.server_key, server.server_secret).items():
        setattr(cfg, name, value)
    return mparticle.EventsApi(cfg)


def shopper(api: mparticle.EventsApi, customer_id: str, email: str, *, consented: bool,
            actions: list[tuple[str, int]]) -> None:
    """One batch of the shopper's commerce events (product action, time)."""
    batch = mparticle.Batch()
    batch.environment = "development"
    ids = mparticle.UserIdentities()
    ids.customerid, ids.email = customer_id, email
    batch.user_identities = ids
    if consented:
        consent = mparticle.ConsentState()
        consent.gdpr = {"marketing": mparticle.GDPRConsentState(document="privacy-v2", consented=True,
                                                                 timestamp_unixtime_ms=actions[0][1])}
        batch.consent_state = consent
    events = []
    for action, at in actions:
        product = mparticle.Product(id="sku-1", name="Trail shoe", price=89.0, quantity=1)
        event = mparticle.CommerceEvent(mparticle.ProductAction(action, products=[product],
                                                                total_amount=89.0 if action == "purchase" else None))
        event.timestamp_unixtime_ms = at
        events.append(event)
    batch.events = events
    api.upload_events(batch)


def meta_rows(requests: list[Captured], method: str) -> list[list[str]]:
    return [row for r in requests if r.method == method for row in r.json()["payload"]["data"]]


def test_the_documented_cart_abandonment_example(kaon_server: KaonServer,
                                                 vendors: tuple[VendorCapture, VendorCapture]) -> None:
    server, (meta, braze) = kaon_server, vendors
    tag = uuid.uuid4().hex[:8]
    audience = created(server, "/audiences", {**example("cart-abandoners"),
                                              "name": f"Cart abandoners {tag}"})
    assert server.admin("POST", f"/audiences/{audience['id']}/activate").status_code == 202
    meta_output = example("meta-output")
    meta_output = created(server, "/outputs", {**meta_output, "name": f"{meta_output['name']} {tag}",
                                               "settings": {**meta_output["settings"], "base_url": meta.url}})
    braze_output = example("braze-output")
    braze_output = created(server, "/outputs", {**braze_output, "name": f"{braze_output['name']} {tag}",
                                                "settings": {**braze_output["settings"], "base_url": braze.url}})
    to_meta = created(server, f"/audiences/{audience['id']}/connections",
                      {**example("meta-connection"), "output_id": meta_output["id"]})
    to_braze = created(server, f"/audiences/{audience['id']}/connections",
                       {**example("braze-connection"), "output_id": braze_output["id"]})
    assert (to_meta["mode"], to_braze["mode"]) == ("sync", "trigger")

    now = int(time.time() * 1000)
    api = events_api(server)
    # Added to cart 61 minutes ago and did not buy: a member. Bought within the hour: never. No consent: Braze only.
    shopper(api, f"cust-{tag}", f"Shopper-{tag}@Example.com", consented=True,
            actions=[("add_to_cart", now - 61 * 60_000)])
    shopper(api, f"buyer-{tag}", f"buyer-{tag}@example.com", consented=True,
            actions=[("add_to_cart", now - 2 * 3_600_000), ("purchase", now - 110 * 60_000)])
    shopper(api, f"quiet-{tag}", f"quiet-{tag}@example.com", consented=False,
            actions=[("add_to_cart", now - 62 * 60_000)])

    added = eventually(lambda: meta_rows(meta.requests(), "POST"), timeout=60, what="Meta add")
    request = meta.requests()[0]
    assert request.route == "/v25.0/23851234567890123/users" and request.query["access_token"] == ["EAAB..."]
    email = hashlib.sha256(f"shopper-{tag}@example.com".encode()).hexdigest()
    assert added == [[email, "", f"cust-{tag}", ""]]
    assert request.json()["payload"]["schema"] == ["EMAIL", "PHONE", "EXTERN_ID", "MADID"]

    def triggered() -> list[dict[str, Any]]:
        found = [e for r in braze.requests() for e in r.json().get("events", [])]
        return found if len(found) >= 2 else []

    events = eventually(triggered, timeout=60, what="two Braze trigger events")
    assert sorted(e["external_id"] for e in events) == sorted([f"cust-{tag}", f"quiet-{tag}"])
    for event in events:
        assert event["name"] == "audience_membership_change"
        assert event["properties"]["audience_id"] == audience["id"] and event["properties"]["action"] == "add"
        assert event["properties"]["audience_name"] == audience["name"]
    assert braze.requests()[0].route == "/users/track"

    trace = server.admin("GET", f"/audiences/{audience['id']}/connections/{to_meta['id']}/trace",
                         params={"mpid": server.profile("customer_id", f"quiet-{tag}")["mpid"]}).json()
    assert trace["member"] is True and trace["synced_identities"] is None and trace["deliveries"] == []
    shown = server.admin("GET", f"/audiences/{audience['id']}/connections/{to_meta['id']}").json()
    assert shown["synced_members"] == 1 and shown["status"] == "live"

    # Disconnecting Meta removes what it was sent: the same row, on DELETE.
    answer = server.admin("DELETE", f"/audiences/{audience['id']}/connections/{to_meta['id']}")
    assert answer.status_code == 202, answer.text
    removed = eventually(lambda: meta_rows(meta.requests(), "DELETE"), timeout=60, what="Meta remove")
    assert removed == added
    eventually(lambda: server.admin("GET", f"/audiences/{audience['id']}/connections/{to_meta['id']}")
               .status_code == 404, timeout=30, what="the connection gone")


def test_connection_refusals_are_clear(kaon_server: KaonServer, vendors: tuple[VendorCapture, VendorCapture]) -> None:
    server, (meta, _) = kaon_server, vendors
    tag = uuid.uuid4().hex[:8]
    audience = created(server, "/audiences", {**example("cart-abandoners"), "name": f"Refusals {tag}"})
    output = created(server, "/outputs", {"name": f"Meta {tag}", "destination": "meta_custom_audiences",
                                          "settings": {"audience_id": "1", "access_token": "t", "base_url": meta.url}})
    path = f"/audiences/{audience['id']}/connections"
    cases = [
        ({"output_id": "out_missing"}, 404, "NOT_FOUND"),
        ({"output_id": output["id"], "settings": {"identity_types": ["shoe_size"]}}, 400, "INVALID_SETTINGS"),
        ({"output_id": output["id"], "settings": {"rules": {"sampling_percent": 101}}}, 400, "INVALID_SETTINGS"),
        ({"output_id": output["id"], "settings": {"colour": "red"}}, 400, "INVALID_SETTINGS"),
    ]
    for body, status, code in cases:
        answer = server.admin("POST", path, json=body)
        assert (answer.status_code, answer.json()["errors"][0]["code"]) == (status, code), (body, answer.text)
    assert server.admin("POST", "/audiences/aud_missing/connections",
                        json={"output_id": output["id"]}).status_code == 404
    assert server.admin("POST", path, json={"output_id": output["id"]}).status_code == 201
    again = server.admin("POST", path, json={"output_id": output["id"]})
    assert (again.status_code, again.json()["errors"][0]["code"]) == (409, "CONFLICT")
    listed = server.listed(path, "connections", limit=1)
    assert [c["output_id"] for c in listed] == [output["id"]]
