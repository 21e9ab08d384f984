"""The browser doors' edges against a real `kaon serve`: the CORS policy (allowed and refused preflights),
the configuration documents (and their 404s), analytics-next's short paths, the beacon door, and unknown
paths, refused preflights and other 4xx answers recorded in `/api/v1/rejections`."""

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually

ORIGIN = "http://shop.example:8123"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_key_auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def preflight(server: KaonServer, path: str, headers: str, method: str = "POST",
              origin: str = ORIGIN) -> httpx.Response:
    return httpx.options(f"{server.url}{path}", timeout=30, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})


def rejection(server: KaonServer, code: str, sample_part: str) -> dict[str, Any]:
    """The recorded rejection with `code` whose sample contains `sample_part` (waits for it)."""

    def probe() -> list[dict[str, Any]]:
        rows = server.admin("GET", "/rejections", params={"limit": 1000}).json()["rejections"]
        return [r for r in rows if r["code"] == code and sample_part in (r["body_sample"] or "")]

    found = eventually(probe, timeout=10, what=f"{code} rejection for {sample_part!r} recorded")
    return found[0]


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


def new_input(server: KaonServer, platform: str) -> dict[str, Any]:
    made = server.admin("POST", "/inputs", json={"name": unique("in"), "platform": platform})
    assert made.status_code == 201, made.text
    item: dict[str, Any] = made.json()
    return item


# CORS


@pytest.mark.parametrize(("path", "headers"), [
    ("/v1/t", "authorization,x-retry-count"),
    ("/v1/b", "authorization"),
    ("/v1/track", "anonymousid,authorization,content-type,rsa-retry-attempt,rsa-retry-reason,"
                  "rsa-since-last-attempt,sentat"),
    ("/v1/batch", "anonymousid,authorization,content-type,sentat"),
    ("/sourceConfig/", "authorization"),
    ("/v1/identify", "content-type,x-mp-key"),
])
def test_preflights_of_real_sdks_are_allowed(kaon_server: KaonServer, path: str, headers: str) -> None:
    response = preflight(kaon_server, path, headers)
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in response.headers
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert set(headers.split(",")) <= allowed
    assert int(response.headers["access-control-max-age"]) > 0


def test_a_preflight_for_an_unlisted_header_is_refused_and_recorded(kaon_server: KaonServer) -> None:
    header = unique("x-custom")
    response = preflight(kaon_server, "/v1/track", f"content-type,{header}")
    assert response.status_code == 403
    assert error_code(response) == "CORS_REFUSED" and header in response.text
    assert "access-control-allow-origin" not in response.headers  # the browser blocks the call
    row = rejection(kaon_server, "CORS_REFUSED", "OPTIONS /v1/track")
    assert row["status"] == 403 and row["input_id"] is None


def test_a_private_network_preflight_is_allowed(kaon_server: KaonServer) -> None:
    """Chrome asks before a public page may call a private address (Kaon on localhost or an office network)."""
    response = httpx.options(f"{kaon_server.url}/v1/t", timeout=30, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
        "Access-Control-Request-Private-Network": "true"})
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-private-network"] == "true"
    assert "access-control-allow-private-network" not in preflight(kaon_server, "/v1/t", "content-type").headers


def test_a_preflight_for_an_unlisted_method_is_refused(kaon_server: KaonServer) -> None:
    response = preflight(kaon_server, "/v1/batch", "content-type", method="DELETE")
    assert (response.status_code, error_code(response)) == (403, "CORS_REFUSED")
    assert "access-control-allow-methods" not in response.headers


def test_server_to_server_doors_refuse_every_preflight(kaon_server: KaonServer) -> None:
    response = preflight(kaon_server, "/v2/events", "authorization,content-type")
    assert (response.status_code, error_code(response)) == (403, "CORS_REFUSED")
    assert "server-to-server" in response.text
    rejection(kaon_server, "CORS_REFUSED", "OPTIONS /v2/events")


def test_an_oversized_header_list_is_refused(kaon_server: KaonServer) -> None:
    response = preflight(kaon_server, "/v1/t", ",".join(["accept"] * 200))
    assert (response.status_code, error_code(response)) == (403, "CORS_REFUSED")


# Unknown paths and wrong methods


def test_an_unknown_collect_path_is_404_and_recorded(kaon_server: KaonServer) -> None:
    path = f"/v1/{unique('nope')}"
    response = httpx.post(f"{kaon_server.url}{path}", content=b"{}", headers={"Origin": ORIGIN}, timeout=30)
    assert (response.status_code, error_code(response)) == (404, "NOT_FOUND")
    row = rejection(kaon_server, "NOT_FOUND", f"POST {path}")
    assert row["status"] == 404


def test_a_path_the_admin_app_does_not_know_either_is_recorded(kaon_server: KaonServer) -> None:
    path = f"/{unique('favicon')}.ico"
    assert httpx.get(f"{kaon_server.url}{path}", timeout=30).status_code == 404
    rejection(kaon_server, "NOT_FOUND", f"GET {path}")
    # A 404 of the admin API itself is the admin API's business, not a collect refusal.
    admin_path = f"/api/v1/{unique('nothing')}"
    assert kaon_server.admin("GET", admin_path.removeprefix("/api/v1")).status_code == 404
    marker = f"/v1/{unique('marker')}"
    httpx.post(f"{kaon_server.url}{marker}", timeout=30)
    rejection(kaon_server, "NOT_FOUND", marker)  # recorded after the admin 404 was handled
    rows = kaon_server.admin("GET", "/rejections", params={"limit": 1000}).json()["rejections"]
    assert not [r for r in rows if admin_path in (r["body_sample"] or "")]


def test_a_wrong_method_is_405_and_recorded(kaon_server: KaonServer) -> None:
    response = httpx.get(f"{kaon_server.url}/v1/t", params={"tag": unique("m")}, timeout=30)
    assert (response.status_code, error_code(response)) == (405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST, OPTIONS"
    rejection(kaon_server, "METHOD_NOT_ALLOWED", "GET /v1/t")


# Configuration documents


def test_config_documents_for_a_web_key(kaon_server: KaonServer) -> None:
    key = kaon_server.web_key
    mparticle = httpx.get(f"{kaon_server.url}/JS/v2/{key}/config", params={"env": "1"},
                          headers={"Origin": ORIGIN}, timeout=30)
    assert mparticle.status_code == 200 and mparticle.json() == {"kitConfigs": [], "pixelConfigs": []}
    assert mparticle.headers["access-control-allow-origin"] == ORIGIN
    assert httpx.get(f"{kaon_server.url}/tags/JS/v2/{key}/config", timeout=30).status_code == 200
    for params, headers in (({"writeKey": key, "p": "npm"}, {}), ({}, write_key_auth(key))):
        source = httpx.get(f"{kaon_server.url}/sourceConfig/", params=params, headers=headers, timeout=30)
        assert source.status_code == 200, source.text
        assert source.json()["source"]["writeKey"] == key and source.json()["source"]["destinations"] == []
    settings = httpx.get(f"{kaon_server.url}/v1/projects/{key}/settings", timeout=30)
    host = kaon_server.url.removeprefix("http://")
    assert settings.json()["integrations"]["Segment.io"] == {"apiKey": key, "apiHost": f"{host}/v1",
                                                             "protocol": "http"}
    everything = mparticle.text + source.text + settings.text
    assert kaon_server.input("web")["id"] not in everything
    assert kaon_server.server_key not in everything and kaon_server.admin_token not in everything


def config_paths(key: str) -> list[str]:
    return [f"/JS/v2/{key}/config?env=1", f"/sourceConfig/?writeKey={key}", f"/v1/projects/{key}/settings"]


def test_no_document_for_unknown_disabled_or_secret_keys(kaon_server: KaonServer) -> None:
    disabled = new_input(kaon_server, "web")
    assert kaon_server.admin("PATCH", f"/inputs/{disabled['id']}", json={"enabled": False}).status_code == 200
    keys = {"unknown": unique("nokey"), "server": kaon_server.server_key, "disabled": disabled["key"]}
    for name, key in keys.items():
        for path in config_paths(key):
            response = eventually(lambda p=path: (r := httpx.get(f"{kaon_server.url}{p}", timeout=30)).status_code
                                  == 404 and r, timeout=5, what=f"{name} key refused at {path}")
            assert error_code(response) == "CONFIG_NOT_FOUND", response.text
            assert key not in response.text
    # One answer for all three, so it tells nobody which keys exist.
    assert len({httpx.get(f"{kaon_server.url}{config_paths(k)[0]}", timeout=30).text for k in keys.values()}) == 1
    row = rejection(kaon_server, "CONFIG_NOT_FOUND", f"/v1/projects/{keys['unknown']}/settings")
    assert row["input_id"] is None
    server_row = rejection(kaon_server, "CONFIG_NOT_FOUND", f"/v1/projects/{keys['server']}/settings")
    assert server_row["input_id"] == kaon_server.input("server")["id"]  # shown to the key's own workspace


def test_source_config_without_a_key_and_with_a_huge_query(kaon_server: KaonServer) -> None:
    response = httpx.get(f"{kaon_server.url}/sourceConfig/", timeout=30)
    assert (response.status_code, error_code(response)) == (404, "CONFIG_NOT_FOUND")
    response = httpx.get(f"{kaon_server.url}/sourceConfig/?writeKey={kaon_server.web_key}&x={'y' * 3000}",
                         timeout=30)
    assert (response.status_code, error_code(response)) == (414, "QUERY_TOO_LONG")


def test_segment_settings_need_a_valid_host(kaon_server: KaonServer) -> None:
    response = httpx.get(f"{kaon_server.url}/v1/projects/{kaon_server.web_key}/settings", timeout=30,
                         headers={"Host": "evil.example/<script>"})
    assert (response.status_code, error_code(response)) == (400, "INVALID_HOST")


# Event doors


def test_short_segment_paths_and_the_beacon_door_store_calls(kaon_server: KaonServer) -> None:
    key = kaon_server.web_key
    names = {path: unique("short") for path in ("/v1/t", "/v1/b", "/beacon/v1/batch")}
    track = {"type": "track", "event": names["/v1/t"], "anonymousId": "a-1", "writeKey": key}
    assert httpx.post(f"{kaon_server.url}/v1/t", content=json.dumps(track), timeout=30,
                      headers={"Content-Type": "text/plain", **write_key_auth(key)}).status_code == 200
    batch = {"writeKey": key, "batch": [{"type": "track", "event": names["/v1/b"], "anonymousId": "a-1"}]}
    assert httpx.post(f"{kaon_server.url}/v1/b", content=json.dumps(batch), timeout=30).status_code == 200
    beacon = {"batch": [{"type": "track", "event": names["/beacon/v1/batch"], "anonymousId": "a-1"}]}
    response = httpx.post(f"{kaon_server.url}/beacon/v1/batch", params={"writeKey": key},
                          content=json.dumps(beacon), headers={"Origin": ORIGIN}, timeout=30)
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == ORIGIN
    for name in names.values():
        eventually(lambda n=name: kaon_server.events_named(n), timeout=10, what=f"{name} stored")


def test_beacon_refusals(kaon_server: KaonServer) -> None:
    body = json.dumps({"batch": [{"type": "track", "event": "x", "anonymousId": "a"}]})
    missing = httpx.post(f"{kaon_server.url}/beacon/v1/batch", content=body, timeout=30)
    assert (missing.status_code, error_code(missing)) == (401, "UNAUTHORIZED")
    assert "writeKey" in missing.text
    server_key = httpx.post(f"{kaon_server.url}/beacon/v1/batch", params={"writeKey": kaon_server.server_key},
                            content=body, timeout=30)
    assert (server_key.status_code, error_code(server_key)) == (401, "UNAUTHORIZED")
    long_query = httpx.post(f"{kaon_server.url}/beacon/v1/batch?writeKey={kaon_server.web_key}&x={'y' * 3000}",
                            content=body, timeout=30)
    assert (long_query.status_code, error_code(long_query)) == (414, "QUERY_TOO_LONG")
    bad = httpx.post(f"{kaon_server.url}/beacon/v1/batch", params={"writeKey": kaon_server.web_key},
                     content=b"{", timeout=30)
    assert (bad.status_code, error_code(bad)) == (400, "INVALID_JSON")
