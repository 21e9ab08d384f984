"""The admin REST API against a real `kaon serve`: auth, event paging, inputs lifecycle, OpenAPI."""

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def event_batch(*names: str) -> bytes:
    return json.dumps({"events": [{"event_type": "custom_event", "data": {"event_name": n}} for n in names]}).encode()


def send(server: KaonServer, body: bytes, key: str | None = None, secret: str | None = None) -> int:
    headers = basic(key or server.server_key, secret or server.server_secret)
    return httpx.post(f"{server.url}/v2/events", content=body, headers=headers, timeout=30).status_code


def test_health_needs_no_token(kaon_server: KaonServer) -> None:
    response = httpx.get(f"{kaon_server.url}/api/v1/health", timeout=30)
    assert response.status_code == 200
    # The role and its parts, for a load balancer; nothing else (no versions, no configuration).
    assert response.json() == {"status": "ok", "role": "all",
                               "parts": {"collect": "running", "process": "running", "deliver": "running"}}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/events"), ("GET", "/inputs"), ("POST", "/inputs"), ("GET", "/inputs/in_x"),
    ("PATCH", "/inputs/in_x"), ("POST", "/inputs/in_x/rotate-secret"), ("GET", "/stats"), ("GET", "/rejections"),
])
@pytest.mark.parametrize("authorization", [None, "Bearer kaon_not-a-token", "Basic abc"])
def test_endpoints_need_a_valid_admin_token(kaon_server: KaonServer, method: str, path: str,
                                            authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.request(method, f"{kaon_server.url}/api/v1{path}", headers=headers, timeout=30,
                             json={"name": "x", "platform": "server"} if method == "POST" else None)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_input_key_is_not_an_admin_token(kaon_server: KaonServer) -> None:
    response = httpx.get(f"{kaon_server.url}/api/v1/inputs", timeout=30,
                         headers={"Authorization": f"Bearer {kaon_server.server_secret}"})
    assert response.status_code == 401


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "many"}, {"cursor": "abc"},
                                    {"cursor": "-1"}, {"cursor": ""}])
def test_events_parameter_bounds(kaon_server: KaonServer, params: dict[str, Any]) -> None:
    response = kaon_server.admin("GET", "/events", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] in ("INVALID_REQUEST", "INVALID_CURSOR")


def test_events_limit_bounds_accepted(kaon_server: KaonServer) -> None:
    assert kaon_server.admin("GET", "/events", params={"limit": 1}).status_code == 200
    assert kaon_server.admin("GET", "/events", params={"limit": 1000}).status_code == 200


def test_cursor_paging_newest_first_returns_every_event_once(kaon_server: KaonServer) -> None:
    tag = unique("page")
    names = [f"{tag}-{i:02d}" for i in range(23)]
    for i in range(0, 23, 5):  # several batches, several events each, in order
        assert send(kaon_server, event_batch(*names[i:i + 5])) == 202
    eventually(lambda: len([e for e in kaon_server.events() if e["event_name"].startswith(tag)]) == 23,
               what="23 events stored")
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = kaon_server.admin("GET", "/events", params=params).json()
        pages += 1
        assert len(page["events"]) <= 4
        seen.extend(page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event appeared twice"
    keys = [(e["received_unixtime_ms"], e["id"]) for e in seen]
    assert keys == sorted(keys, reverse=True), "not newest first"
    mine = [e["event_name"] for e in seen if e["event_name"].startswith(tag)]
    assert mine == list(reversed(names))
    assert pages >= 6
    event = next(e for e in seen if e["event_name"] == names[0])
    assert event["event_type"] == "custom_event"
    assert event["input_id"] == kaon_server.input("server")["id"]
    assert event["source_message_id"]


def test_inputs_create_list_get_patch(kaon_server: KaonServer) -> None:
    name = unique("web")
    made = kaon_server.admin("POST", "/inputs", json={"name": name, "platform": "web"})
    assert made.status_code == 201, made.text
    item = made.json()
    assert item["name"] == name and item["platform"] == "web" and item["enabled"] is True
    assert item["has_secret"] is False and item["secret"] is None and item["allow_key_only"] is True
    assert item["kind"] == "platform"
    listed = kaon_server.listed("/inputs", "inputs")
    assert item["created_unixtime_ms"] > 0
    assert item["id"] in {i["id"] for i in listed}
    assert {i["name"] for i in listed} >= {"server", "web", name}
    assert all("secret" not in i for i in listed)
    got = kaon_server.admin("GET", f"/inputs/{item['id']}").json()
    assert got["key"] == item["key"]
    patched = kaon_server.admin("PATCH", f"/inputs/{item['id']}", json={"enabled": False})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert kaon_server.admin("GET", f"/inputs/{item['id']}").json()["enabled"] is False
    server = kaon_server.admin("POST", "/inputs", json={"name": unique("srv"), "platform": "server",
                                                        "rate_limit_rps": 5}).json()
    assert server["has_secret"] is True and server["secret"] and server["rate_limit_rps"] == 5
    assert server["allow_key_only"] is False


@pytest.mark.parametrize("body", [
    {"name": "", "platform": "web"}, {"name": "x", "platform": "mainframe"}, {"platform": "web"},
    {"name": "x", "platform": "server", "rate_limit_rps": 0},
])
def test_input_create_validation(kaon_server: KaonServer, body: dict[str, Any]) -> None:
    response = kaon_server.admin("POST", "/inputs", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"


def test_input_name_conflict(kaon_server: KaonServer) -> None:
    response = kaon_server.admin("POST", "/inputs", json={"name": "server", "platform": "server"})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "CONFLICT"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/inputs/in_unknown", None), ("PATCH", "/inputs/in_unknown", {"enabled": True}),
    ("POST", "/inputs/in_unknown/rotate-secret", None),
])
def test_unknown_input_is_404(kaon_server: KaonServer, method: str, path: str, body: Any) -> None:
    response = kaon_server.admin(method, path, json=body)
    assert response.status_code == 404, response.text
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_rotate_secret_refuses_the_old_one_and_accepts_the_new(kaon_server: KaonServer) -> None:
    item = kaon_server.admin("POST", "/inputs", json={"name": unique("rot"), "platform": "server"}).json()
    old = item["secret"]
    eventually(lambda: send(kaon_server, event_batch(), item["key"], old) == 202, what="new input accepted")
    rotated = kaon_server.admin("POST", f"/inputs/{item['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new and new != old
    assert rotated.json()["key"] == item["key"]
    eventually(lambda: send(kaon_server, event_batch(), item["key"], old) == 401, timeout=5, what="old refused")
    assert send(kaon_server, event_batch(), item["key"], new) == 202


def test_other_workspaces_inputs_are_invisible(kaon_server: KaonServer) -> None:
    from support.server import kaon

    done = kaon("init", "--workspace", unique("ws"), "--json", data_dir=kaon_server.data_dir)
    assert done.returncode == 0, done.stderr
    other = json.loads(done.stdout)
    foreign = other["inputs"][0]["id"]
    assert kaon_server.admin("GET", f"/inputs/{foreign}").status_code == 404
    assert kaon_server.admin("PATCH", f"/inputs/{foreign}", json={"enabled": False}).status_code == 404
    assert foreign not in {i["id"] for i in kaon_server.listed("/inputs", "inputs")}


def test_openapi_document_lists_the_paths(kaon_server: KaonServer) -> None:
    response = httpx.get(f"{kaon_server.url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/api/v1/health", "/api/v1/events", "/api/v1/inputs", "/api/v1/inputs/{input_id}",
            "/api/v1/inputs/{input_id}/rotate-secret", "/api/v1/stats", "/api/v1/rejections"} <= set(document["paths"])
    assert "patch" in document["paths"]["/api/v1/inputs/{input_id}"]
