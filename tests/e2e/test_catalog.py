"""The data catalog through a real `kaon serve`: mParticle batches and a Segment call, read back from the API."""

import uuid
from typing import Any

import httpx

from support.server import KaonServer
from support.waiting import eventually


def mparticle_batch(name: str, environment: str, **attrs: Any) -> dict[str, Any]:
    return {
        "environment": environment,
        "user_identities": {"customer_id": f"cust-{uuid.uuid4().hex[:6]}", "email": "ann@example.com"},
        "user_attributes": {"plan": "pro", "$FirstName": "Annabel"},
        "events": [
            {"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "transaction",
                                                    "source_message_id": uuid.uuid4().hex,
                                                    "custom_attributes": attrs}},
            {"event_type": "screen_view", "data": {"screen_name": f"{name} screen",
                                                   "source_message_id": uuid.uuid4().hex}},
        ],
    }


def find(server: KaonServer, **params: str) -> list[dict[str, Any]]:
    return server.listed("/catalog", "data_points", **params)


def test_mparticle_and_segment_data_points_with_types_examples_and_inputs(kaon_server: KaonServer) -> None:
    server = kaon_server
    name = f"Checkout {uuid.uuid4().hex[:8]}"
    for environment, attrs in (("production", {"total": 12.5, "coupon": "SPRING"}),
                               ("production", {"total": "13", "contact": "bob@example.org"}),
                               ("development", {"total": None})):
        response = httpx.post(f"{server.url}/v2/events", json=mparticle_batch(name, environment, **attrs),
                              headers=server.basic(), timeout=30)
        assert response.status_code == 202, response.text
    response = httpx.post(f"{server.url}/v1/track", headers=server.basic(server.web_key, ""), timeout=30, json={
        "userId": "segment-user-1", "event": name, "properties": {"total": 7, "coupon": "FALL"},
        "messageId": uuid.uuid4().hex})
    assert response.status_code == 200, response.text

    def checkout() -> dict[str, Any] | None:
        points = [p for p in find(server, q=name) if p["type"] == "custom_event" and p["name"] == name]
        counts = {p["custom_event_type"]: p["count"] for p in points}
        if counts.get("transaction") != 3 or sum(counts.values()) != 4:
            return None
        return next(p for p in points if p["custom_event_type"] == "transaction")

    listed = eventually(checkout, timeout=20, what="the checkout data points catalogued")
    server_input, web_input = server.input("server")["id"], server.input("web")["id"]
    assert listed["input_ids"] == [server_input]
    assert listed["environments"] == ["development", "production"]
    assert [p["count"] for p in find(server, q=name, environment="development", type="custom_event")] == [1]
    assert find(server, q=name, input_id=web_input, type="screen_view") == []

    detail = server.admin("GET", f"/catalog/{listed['id']}").json()
    assert detail["count"] == 3
    assert {(s["input_id"], s["environment"], s["count"]) for s in detail["seen"]} == {
        (server_input, "production", 2), (server_input, "development", 1)}
    assert detail["first_seen_unixtime_ms"] <= detail["last_seen_unixtime_ms"]
    attrs = {a["name"]: a for a in detail["attributes"]}
    assert attrs["total"]["types"] == ["string", "number", "null"]
    assert attrs["total"]["count"] == 3
    assert sorted(attrs["total"]["examples"]) == ["12.5", "13"]
    assert attrs["coupon"]["examples"] == ["SPRING"]
    assert attrs["contact"]["examples"] == ["<email>"]

    segment = [p for p in find(server, q=name, input_id=web_input) if p["type"] == "custom_event"]
    assert len(segment) == 1
    segment_detail = server.admin("GET", f"/catalog/{segment[0]['id']}").json()
    assert {a["name"]: a["types"] for a in segment_detail["attributes"]} == {"total": ["number"],
                                                                             "coupon": ["string"]}

    users = server.admin("GET", f"/catalog/{find(server, type='user_attributes')[0]['id']}").json()
    user_attrs = {a["name"]: a for a in users["attributes"]}
    assert user_attrs["plan"]["examples"] == ["pro"]
    assert user_attrs["$FirstName"]["examples"] == ["<redacted>"]
    identities = server.admin("GET", f"/catalog/{find(server, type='user_identities')[0]['id']}").json()
    assert {"customer_id", "email"} <= {a["name"] for a in identities["attributes"]}
    assert all(a["examples"] == [] for a in identities["attributes"])
    for secret in ("ann@example.com", "bob@example.org", "Annabel", "cust-"):
        assert secret not in str(users) + str(identities) + str(detail)


def test_unknown_data_point_and_no_token(kaon_server: KaonServer) -> None:
    response = kaon_server.admin("GET", "/catalog/dp_0000000000000000")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"
    assert httpx.get(f"{kaon_server.url}/api/v1/catalog", timeout=30).status_code == 401
