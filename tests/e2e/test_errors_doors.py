"""Every refusal of the collection front doors, against a real `kaon serve`: status, stable code, a message
naming the limit or the JSON path, and the refusal recorded where a person can see it."""

import base64
import gzip
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually

DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def basic(key: str, secret: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def custom(name: str, **data: Any) -> dict[str, Any]:
    return {"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other", **data}}


def batch(*events: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({"environment": "development", "events": list(events), **fields}).encode()


def post(server: KaonServer, path: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=content, headers=headers, timeout=30)


def assert_refused(response: httpx.Response, status: int, code: str, *mentions: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert len(errors) == 1
    assert errors[0]["code"] == code, errors
    message: str = errors[0]["message"]
    for text in mentions:
        assert text in message, f"{text!r} not in {message!r}"
    return message


def new_input(server: KaonServer, platform: str = "server", **fields: Any) -> dict[str, Any]:
    """An input created through the admin API, once the doors' cached key table knows it."""
    made = server.admin("POST", "/inputs", json={"name": unique("in"), "platform": platform, **fields})
    assert made.status_code == 201, made.text
    item: dict[str, Any] = made.json()
    headers = basic(item["key"], item["secret"] or "")
    path = "/v2/events" if item["secret"] else f"/v3/JS/{item['key']}/events"
    eventually(lambda: post(server, path, batch(), headers).status_code == 202, timeout=10,
               what="new input accepted by the doors")
    return item


# Authentication


def test_unknown_key(kaon_server: KaonServer) -> None:
    response = post(kaon_server, "/v2/events", batch(), basic("nope", kaon_server.server_secret))
    assert_refused(response, 401, "UNAUTHORIZED", "Unknown API key")


def test_wrong_secret(kaon_server: KaonServer) -> None:
    response = post(kaon_server, "/v2/events", batch(), kaon_server.basic(secret="wrong"))
    assert_refused(response, 401, "UNAUTHORIZED", "Wrong API secret")


def test_missing_authorization(kaon_server: KaonServer) -> None:
    assert_refused(post(kaon_server, "/v2/events", batch()), 401, "UNAUTHORIZED", "Missing Authorization")
    assert_refused(post(kaon_server, "/v2/bulkevents", b"[{}]"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("value", ["Bearer abc", "Basic ***", "Basic", "Basic " + base64.b64encode(b"\xff:x").decode()])
def test_invalid_authorization(kaon_server: KaonServer, value: str) -> None:
    response = post(kaon_server, "/v2/events", batch(), {"Authorization": value})
    assert_refused(response, 401, "UNAUTHORIZED")


def test_web_door_key_checks(kaon_server: KaonServer) -> None:
    assert_refused(post(kaon_server, "/v3/JS/nope/events", batch()), 401, "UNAUTHORIZED", "Unknown API key")
    # A server input's key is not enough on its own.
    response = post(kaon_server, f"/v3/JS/{kaon_server.server_key}/events", batch())
    assert_refused(response, 401, "UNAUTHORIZED", "secret")


def test_input_disabled_with_the_cli_is_refused_then_enabled_again(kaon_server: KaonServer) -> None:
    item = new_input(kaon_server)
    headers = basic(item["key"], item["secret"])

    def cli(action: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "kaon", "inputs", "--data-dir", str(kaon_server.data_dir),
                               "--json", action, item["id"]], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    assert cli("disable")["enabled"] is False
    response = eventually(lambda: (r := post(kaon_server, "/v2/events", batch(), headers)).status_code == 401 and r,
                          timeout=5, what="disabled input refused")
    assert_refused(response, 401, "UNAUTHORIZED", "disabled")
    assert cli("enable")["enabled"] is True
    eventually(lambda: post(kaon_server, "/v2/events", batch(), headers).status_code == 202, timeout=5,
               what="enabled input accepted again")


def test_input_disabled_through_the_admin_api_is_refused(kaon_server: KaonServer) -> None:
    item = new_input(kaon_server, platform="web")
    patched = kaon_server.admin("PATCH", f"/inputs/{item['id']}", json={"enabled": False})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    path = f"/v3/JS/{item['key']}/events"
    response = eventually(lambda: (r := post(kaon_server, path, batch())).status_code == 401 and r,
                          timeout=5, what="disabled web input refused")
    assert_refused(response, 401, "UNAUTHORIZED", "disabled")


# Segment-spec write keys


def track(**extra: Any) -> bytes:
    return json.dumps({"event": unique("seg"), "userId": "u1", **extra}).encode()


def test_server_key_alone_is_not_a_segment_write_key(kaon_server: KaonServer) -> None:
    response = post(kaon_server, "/v1/track", track(), basic(kaon_server.server_key))
    assert_refused(response, 401, "UNAUTHORIZED", "secret")
    response = post(kaon_server, "/v1/track", track(writeKey=kaon_server.server_key))
    assert_refused(response, 401, "UNAUTHORIZED")


def test_segment_write_keys_accepted(kaon_server: KaonServer) -> None:
    for headers, body in [
        (basic(kaon_server.web_key), track()),                                  # Basic user, empty password
        (None, track(writeKey=kaon_server.web_key)),                            # writeKey in the body
        (kaon_server.basic(), track()),                                         # server key + secret
    ]:
        response = post(kaon_server, "/v1/track", body, headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}
    response = post(kaon_server, "/v1/batch",
                    json.dumps({"writeKey": kaon_server.web_key, "batch": [json.loads(track(type="track"))]}).encode())
    assert response.status_code == 200, response.text


def test_segment_missing_write_key(kaon_server: KaonServer) -> None:
    assert_refused(post(kaon_server, "/v1/track", track()), 401, "UNAUTHORIZED", "write key")


# Shapes


@pytest.mark.parametrize(("content", "code", "mentions"), [
    (b'{"events": [', "INVALID_JSON", ["Malformed JSON"]),
    (b"[]", "INVALID_SHAPE", ["`$`"]),
    (b'{"events": {}}', "INVALID_SHAPE", ["`$.events`"]),
    (b'{"events": [{"event_type": "teleport", "data": {}}]}', "INVALID_SHAPE", ["`$.events[0].event_type`"]),
    (b'{"events": [{"event_type": "custom_event", "data": {}}]}', "INVALID_SHAPE",
     ["event_name", "`$.events[0].data`"]),
    (batch(custom("x", custom_attributes={"a": {"nested": 1}})), "INVALID_SHAPE",
     ["`$.events[0].data.custom_attributes"]),
    (batch(environment="staging"), "INVALID_SHAPE", ["`$.environment`"]),
])
def test_wrong_shapes_name_the_path(kaon_server: KaonServer, content: bytes, code: str, mentions: list[str]) -> None:
    assert_refused(post(kaon_server, "/v2/events", content, kaon_server.basic()), 400, code, *mentions)


def test_bulk_shapes_name_the_batch(kaon_server: KaonServer) -> None:
    content = b"[" + batch() + b',{"events": [{"event_type": "nope"}]}]'
    assert_refused(post(kaon_server, "/v2/bulkevents", content, kaon_server.basic()), 400, "INVALID_SHAPE",
                   "`$[1].events[0].event_type`")
    assert_refused(post(kaon_server, "/v2/bulkevents", batch(), kaon_server.basic()), 400, "INVALID_SHAPE", "`$`")


def test_segment_shape_errors(kaon_server: KaonServer) -> None:
    response = post(kaon_server, "/v1/track", b'{"userId": "u"}', basic(kaon_server.web_key))
    assert_refused(response, 400, "INVALID_SHAPE", "`event`")
    response = post(kaon_server, "/v1/batch", b'{"batch": [{"type": "track", "event": "e"}]}',
                    basic(kaon_server.web_key))
    assert_refused(response, 400, "INVALID_SHAPE", "`$.batch[0]`")


# Limits


def test_request_over_256_kb(kaon_server: KaonServer) -> None:
    content = b" " * (256 * 1024 + 1)
    response = post(kaon_server, "/v2/bulkevents", content, kaon_server.basic())
    assert_refused(response, 413, "REQUEST_TOO_LARGE", "256 KB")


def test_gzip_body_over_256_kb_once_decompressed(kaon_server: KaonServer) -> None:
    content = gzip.compress(batch(custom("big", custom_attributes={"pad": " "})) + b" " * (256 * 1024))
    assert len(content) < 10_000
    headers = {**kaon_server.basic(), "Content-Encoding": "gzip"}
    assert_refused(post(kaon_server, "/v2/events", content, headers), 413, "REQUEST_TOO_LARGE", "256 KB")


def test_batch_over_128_kb(kaon_server: KaonServer) -> None:
    content = batch(custom("big", custom_attributes={f"a{i}": "x" * 4000 for i in range(34)}))
    assert 128 * 1024 < len(content) < 256 * 1024
    assert_refused(post(kaon_server, "/v2/events", content, kaon_server.basic()), 413, "BATCH_TOO_LARGE",
                   "128 KB", "`$`")
    bulk = b"[" + batch() + b"," + content + b"]"
    assert_refused(post(kaon_server, "/v2/bulkevents", bulk, kaon_server.basic()), 413, "BATCH_TOO_LARGE",
                   "`$[1]`")


def test_more_than_100_batches(kaon_server: KaonServer) -> None:
    ok = post(kaon_server, "/v2/bulkevents", b"[" + b",".join([batch()] * 100) + b"]", kaon_server.basic())
    assert ok.status_code == 202, ok.text
    content = b"[" + b",".join([batch()] * 101) + b"]"
    assert_refused(post(kaon_server, "/v2/bulkevents", content, kaon_server.basic()), 400, "TOO_MANY_BATCHES",
                   "101", "100 batches")


def test_more_than_100_user_attributes(kaon_server: KaonServer) -> None:
    content = batch(user_attributes={f"attr{i}": i for i in range(101)})
    assert_refused(post(kaon_server, "/v2/events", content, kaon_server.basic()), 400, "TOO_MANY_USER_ATTRIBUTES",
                   "100 user attributes", "`$.user_attributes`")


def test_attribute_value_over_4096_chars(kaon_server: KaonServer) -> None:
    content = batch(custom("long", custom_attributes={"note": "n" * 4097}))
    assert_refused(post(kaon_server, "/v2/events", content, kaon_server.basic()), 400, "ATTRIBUTE_VALUE_TOO_LONG",
                   "4096", "`$.events[0].data.custom_attributes.note`")
    content = batch(user_attributes={"bio": "b" * 4097})
    assert_refused(post(kaon_server, "/v2/events", content, kaon_server.basic()), 400, "ATTRIBUTE_VALUE_TOO_LONG",
                   "`$.user_attributes.bio`")
    at_limit = batch(custom(unique("at-limit"), custom_attributes={"note": "n" * 4096}))
    assert post(kaon_server, "/v2/events", at_limit, kaon_server.basic()).status_code == 202


def test_segment_event_over_32_kb(kaon_server: KaonServer) -> None:
    big = {"type": "track", "event": "big", "userId": "u", "properties": {"pad": "x" * (32 * 1024)}}
    response = post(kaon_server, "/v1/track", json.dumps(big).encode(), basic(kaon_server.web_key))
    assert_refused(response, 400, "EVENT_TOO_LARGE", "32 KB")
    small = json.loads(track(type="track"))
    response = post(kaon_server, "/v1/batch", json.dumps({"batch": [small, big]}).encode(),
                    basic(kaon_server.web_key))
    assert_refused(response, 400, "EVENT_TOO_LARGE", "32 KB", "`$.batch[1]`")


def segment_batch(size: int) -> bytes:
    call = {"type": "track", "event": "bulk", "userId": "u", "properties": {"pad": "p" * 1000}}
    calls = [{**call, "messageId": unique("m")} for _ in range(size // 1100)]
    return json.dumps({"batch": calls}).encode()


def test_segment_batch_over_500_kb_is_refused(kaon_server: KaonServer) -> None:
    content = segment_batch(520 * 1024)
    assert len(content) > 500 * 1024
    response = post(kaon_server, "/v1/batch", content, basic(kaon_server.web_key))
    assert response.status_code == 413, response.text


def test_segment_batch_between_256_and_500_kb_is_accepted(kaon_server: KaonServer) -> None:
    content = segment_batch(400 * 1024)
    assert 256 * 1024 < len(content) < 500 * 1024
    response = post(kaon_server, "/v1/batch", content, basic(kaon_server.web_key))
    assert response.status_code == 200, response.text


# Encodings


def test_invalid_gzip(kaon_server: KaonServer) -> None:
    headers = {**kaon_server.basic(), "Content-Encoding": "gzip"}
    assert_refused(post(kaon_server, "/v2/events", batch(), headers), 400, "INVALID_GZIP", "gzip")
    truncated = gzip.compress(batch(custom("t")))[:-8]
    assert_refused(post(kaon_server, "/v2/events", truncated, headers), 400, "INVALID_GZIP")


def test_gzip_bodies_are_accepted(kaon_server: KaonServer) -> None:
    name = unique("gz")
    headers = {**kaon_server.basic(), "Content-Encoding": "gzip"}
    assert post(kaon_server, "/v2/events", gzip.compress(batch(custom(name))), headers).status_code == 202
    segment = gzip.compress(json.dumps({"batch": [{"type": "track", "event": name, "userId": "u"}]}).encode())
    response = post(kaon_server, "/v1/batch", segment, {**basic(kaon_server.web_key), "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    eventually(lambda: len(kaon_server.events_named(name)) == 2, what="both gzip events stored")


def test_deeply_nested_json_is_a_400(kaon_server: KaonServer) -> None:
    response = post(kaon_server, "/v2/bulkevents", b"[" * 100_000, kaon_server.basic())
    assert_refused(response, 400, "INVALID_JSON")


# Historical


def historical(*events: dict[str, Any]) -> bytes:
    return json.dumps([{"environment": "production", "events": list(events)}]).encode()


def test_historical_rules(kaon_server: KaonServer) -> None:
    h = kaon_server.basic()
    old = now_ms() - 40 * DAY_MS
    assert_refused(post(kaon_server, "/v2/bulkevents/historical", historical(), h), 400, "HISTORICAL_NO_EVENTS",
                   "`$[0].events`")
    content = historical(custom("h", timestamp_unixtime_ms=old), custom("h"))
    assert_refused(post(kaon_server, "/v2/bulkevents/historical", content, h), 400, "HISTORICAL_TIMESTAMP_REQUIRED",
                   "`$[0].events[1].data.timestamp_unixtime_ms`")
    recent = now_ms() - 71 * 3_600_000
    content = historical(custom("h", timestamp_unixtime_ms=recent))
    assert_refused(post(kaon_server, "/v2/bulkevents/historical", content, h), 400, "HISTORICAL_TOO_RECENT",
                   "72 hours", "`$[0].events[0].data.timestamp_unixtime_ms`")


def test_historical_old_events_are_accepted_with_their_time(kaon_server: KaonServer) -> None:
    name = unique("hist")
    old = now_ms() - 40 * DAY_MS
    content = historical(custom(name, timestamp_unixtime_ms=old))
    response = post(kaon_server, "/v2/bulkevents/historical", content, kaon_server.basic())
    assert response.status_code == 202, response.text
    stored = eventually(lambda: kaon_server.events_named(name), what="historical event stored")
    assert stored[0]["timestamp_unixtime_ms"] == old


# Rate limit


def test_rate_limited_input_answers_429_with_retry_after(kaon_server: KaonServer) -> None:
    item = new_input(kaon_server, rate_limit_rps=2)
    headers = basic(item["key"], item["secret"])
    with httpx.Client(base_url=kaon_server.url, headers=headers, timeout=30) as client:
        responses = [client.post("/v2/events", content=batch()) for _ in range(12)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert {r.status_code for r in responses} <= {202, 429}
    for response in limited:
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["retry-after"].isdigit()
        assert_refused(response, 429, "RATE_LIMITED", "2 requests/s")
    # Another input is not affected.
    assert post(kaon_server, "/v2/events", batch(), kaon_server.basic()).status_code == 202


# CORS, methods, paths


def test_cors_preflight_on_the_web_door(kaon_server: KaonServer) -> None:
    origin = "http://shop.example:8123"
    response = httpx.options(f"{kaon_server.url}/v3/JS/{kaon_server.web_key}/events", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-mp-key"}, timeout=30)
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == origin
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"x-mp-key", "content-type"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]


def test_web_upload_as_text_plain_is_accepted_with_cors(kaon_server: KaonServer) -> None:
    name = unique("web")
    origin = "http://shop.example"
    response = post(kaon_server, f"/v3/JS/{kaon_server.web_key}/events", batch(custom(name)),
                    {"Content-Type": "text/plain;charset=UTF-8", "Origin": origin, "x-mp-key": kaon_server.web_key})
    assert response.status_code == 202, response.text
    assert response.headers["access-control-allow-origin"] == origin
    # Refusals carry CORS headers too, so the page's script can read why.
    response = post(kaon_server, f"/v3/JS/{kaon_server.web_key}/events", b"{", {"Origin": origin})
    assert_refused(response, 400, "INVALID_JSON")
    assert response.headers["access-control-allow-origin"] == origin
    stored = eventually(lambda: kaon_server.events_named(name), what="web event stored")
    assert stored[0]["input_id"] == kaon_server.input("web")["id"]


@pytest.mark.parametrize("path", ["/v2/events", "/v2/bulkevents", "/v1/batch", "/v3/JS/somekey/events"])
def test_get_on_a_door_is_405(kaon_server: KaonServer, path: str) -> None:
    response = httpx.get(f"{kaon_server.url}{path}", timeout=30)
    assert_refused(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["allow"]


def test_unknown_path_is_404(kaon_server: KaonServer) -> None:
    assert httpx.post(f"{kaon_server.url}/v2/nothing", content=b"{}", timeout=30).status_code == 404
    assert httpx.get(f"{kaon_server.url}/v3/JS/a/b/events", timeout=30).status_code == 404


def test_unknown_path_answers_the_error_shape(kaon_server: KaonServer) -> None:
    assert_refused(httpx.get(f"{kaon_server.url}/v2/nothing", timeout=30), 404, "NOT_FOUND")


# Nothing is lost


def test_every_refusal_is_recorded_and_every_acceptance_stored(kaon_server: KaonServer) -> None:
    item = new_input(kaon_server)
    h = basic(item["key"], item["secret"])
    names = [unique("kept") for _ in range(5)]
    for name in names:
        assert post(kaon_server, "/v2/events", batch(custom(name)), h).status_code == 202
    refusals = {
        "INVALID_JSON": post(kaon_server, "/v2/events", b"{", h),
        "INVALID_SHAPE": post(kaon_server, "/v2/events", b'{"events": 1}', h),
        "TOO_MANY_BATCHES": post(kaon_server, "/v2/bulkevents", b"[" + b",".join([b"{}"] * 101) + b"]", h),
        "REQUEST_TOO_LARGE": post(kaon_server, "/v2/events", b" " * (300 * 1024), h),
        "INVALID_GZIP": post(kaon_server, "/v2/events", b"x", {**h, "Content-Encoding": "gzip"}),
        "HISTORICAL_NO_EVENTS": post(kaon_server, "/v2/bulkevents/historical", historical(), h),
    }
    for code, response in refusals.items():
        assert response.json()["errors"][0]["code"] == code

    def recorded() -> dict[str, int]:
        rows = kaon_server.listed("/rejections", "rejections")
        mine = [r for r in rows if r["input_id"] == item["id"]]
        counts: dict[str, int] = {}
        for row in mine:
            counts[row["code"]] = counts.get(row["code"], 0) + row["count"]
        return counts

    got = eventually(lambda: len(recorded()) == len(refusals) and recorded(), what="every refusal recorded")
    assert got == dict.fromkeys(refusals, 1)
    rows = kaon_server.listed("/rejections", "rejections")
    sample = next(r for r in rows if r["input_id"] == item["id"] and r["code"] == "INVALID_SHAPE")
    assert sample["status"] == 400 and sample["body_sample"] == '{"events": 1}'

    def stats() -> dict[str, Any]:
        rows = kaon_server.listed("/stats", "stats")
        mine = [r for r in rows if r["input_id"] == item["id"]]
        total: dict[str, Any] = {"events_processed": 0, "rejected": {}}
        for row in mine:
            total["events_processed"] += row["events_processed"]
            for reason, n in row["rejected"].items():
                total["rejected"][reason] = total["rejected"].get(reason, 0) + n
        return total

    final = eventually(lambda: (s := stats())["events_processed"] == 5 and s, what="stats caught up")
    assert final["rejected"] == dict.fromkeys(refusals, 1)
    stored = [e for e in kaon_server.events() if e["input_id"] == item["id"]]
    assert sorted(e["event_name"] for e in stored) == sorted(names)


def test_wrong_secret_on_a_known_key_is_visible_in_rejections(kaon_server: KaonServer) -> None:
    item = new_input(kaon_server)
    response = post(kaon_server, "/v2/events", batch(), basic(item["key"], "not-the-secret"))
    assert response.status_code == 401

    def seen() -> bool:
        rows = kaon_server.listed("/rejections", "rejections")
        return any(r["input_id"] == item["id"] and r["code"] == "UNAUTHORIZED" for r in rows)

    eventually(seen, timeout=3, what="401 for a known key recorded")


def test_an_out_of_range_mpid_does_not_stall_processing(fresh_server: KaonServer) -> None:
    server = fresh_server.start()
    name = unique("after")
    huge = json.dumps({"mpid": 2**64 - 1, "events": [custom("huge")]}).encode()
    first = post(server, "/v2/events", huge, server.basic())
    assert first.status_code in (202, 400)
    assert post(server, "/v2/events", batch(custom(name)), server.basic()).status_code == 202
    eventually(lambda: server.events_named(name), timeout=6, what="later event stored")
