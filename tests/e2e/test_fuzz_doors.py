"""A bounded fuzz of the collection doors of a real `kaon serve` (mParticle, Segment, RudderStack beacon,
IDSync): random and malformed paths, methods, headers, content types, gzip, huge numbers and non-UTF-8 bytes
never get a 5xx, and the server keeps answering. What is stored is not asserted here (integers beyond 64 bits
are a known, separately fixed finding)."""

import base64
import gzip
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.server import KaonServer

EXAMPLES = 150  # the budget per fuzz test: a few seconds against one server

DOORS = ["/v2/events", "/v2/bulkevents", "/v2/bulkevents/historical", "/v3/JS/{web}/events",
         "/webevents/v3/JS/{web}/events", "/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/t",
         "/beacon/v1/batch", "/v1/login", "/v1/logout", "/v1/search", "/v1/identity/alias",
         "/identity/v1/identify", "/v1/{mpid}/modify", "/v1/identity/{web}/alias"]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "application/json; "
                 "charset=latin-1", "multipart/form-data; boundary=x", "application/\xe9"]

HUGE = st.sampled_from([2**63, -(2**63) - 1, 10**30, 1e308, float("inf"), float("nan"), -0.0, 2**53 + 1])
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(
    max_size=20) | HUGE
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
# Bytes a client can put on the wire in a header value (h11 refuses controls and edge whitespace): ASCII and
# obs-text (0x80-0xff, not UTF-8 in general).
HEADER_BYTES = st.lists(st.integers(0x21, 0x7E) | st.integers(0x80, 0xFF), min_size=1, max_size=40).map(bytes)
FIELDS = ["events", "batch", "user_identities", "user_attributes", "known_identities", "environment", "mpid",
          "data", "event_type", "custom_attributes", "type", "userId", "anonymousId", "traits", "properties",
          "timestamp", "messageId", "context", "integrations", "writeKey", "sentAt", "event", "identity_changes"]


def plausible() -> st.SearchStrategy[Any]:
    """Bodies shaped like the doors' own (known field names, random values) so parsing goes deeper."""
    kinds = st.sampled_from(["custom_event", "screen_view", "commerce_event", "x", ""]) | JSON
    data = st.dictionaries(st.sampled_from([*FIELDS, "event_name", "source_message_id"]), JSON)
    event = st.fixed_dictionaries({"event_type": kinds, "data": data})
    segment = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6)
    return (st.fixed_dictionaries({"events": st.lists(event, max_size=3)}, optional={
        "environment": st.sampled_from(["development", "production"]) | JSON,
        "user_identities": st.dictionaries(st.sampled_from(["customer_id", "email", "other", "x"]), JSON),
        "user_attributes": st.dictionaries(st.text(max_size=8), JSON, max_size=3),
        "mpid": JSON})
        | st.fixed_dictionaries({"batch": st.lists(segment, max_size=3)}, optional={"writeKey": JSON})
        | segment
        | st.fixed_dictionaries({"known_identities": st.dictionaries(st.sampled_from(
            ["customerid", "email", "device_application_stamp", "other"]), JSON)}, optional={
            "identity_changes": JSON, "client_sdk": JSON, "request_id": JSON}))


BODIES = (st.binary(max_size=300)
          | JSON.map(lambda v: json.dumps(v).encode())
          | plausible().map(lambda v: json.dumps(v).encode())
          | plausible().map(lambda v: json.dumps(v).encode().replace(b'"', b"\xff\"", 1))
          | st.just(b'{"events": [' * 2000)
          | st.just(b'{"n": 1' + b"0" * 5000 + b"}"))


@st.composite
def requests(draw: st.DrawFn, server: KaonServer) -> dict[str, Any]:
    web = server.web_key
    path = draw(st.sampled_from(DOORS)).format(web=draw(st.sampled_from([web, "nokey", "%ff", "a" * 300])),
                                               mpid=draw(st.sampled_from(["1", "-5", "x", "0"])))
    if draw(st.booleans()):
        path += draw(st.sampled_from(["", "/", "?x=1", "?%ff=%00", "/../x", "%00"]))
    body = draw(BODIES)
    headers: list[tuple[bytes, bytes]] = []
    auth = draw(st.sampled_from(["server", "web", "none", "garbage", "bytes"]))
    if auth == "server":
        headers.append((b"authorization", server.basic()["Authorization"].encode()))
        headers.append((b"x-mp-key", server.server_key.encode()))
    elif auth == "web":
        headers.append((b"authorization", b"Basic " + base64.b64encode(f"{web}:".encode())))
        headers.append((b"x-mp-key", web.encode()))
    elif auth == "garbage":
        headers.append((b"authorization", draw(st.sampled_from([b"Basic", b"Basic !!!", b"Bearer x", b"Basic " +
                                                                base64.b64encode(b"\xff\xfe:\x00")]))))
    elif auth == "bytes":
        headers.append((draw(st.sampled_from([b"authorization", b"x-mp-key", b"user-agent", b"origin"])),
                        draw(HEADER_BYTES)))
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers.append((b"content-type", content_type.encode("utf-8")))
    encoding = draw(st.sampled_from(["none", "gzip", "gzip-lie", "deflate", "br"]))
    if encoding == "gzip":
        body = gzip.compress(body)
        headers.append((b"content-encoding", b"gzip"))
    elif encoding != "none":
        headers.append((b"content-encoding", b"gzip" if encoding == "gzip-lie" else encoding.encode()))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "OPTIONS", "DELETE"]))
    return {"method": method, "path": path, "headers": headers, "body": body}


def send(client: httpx.Client, request: dict[str, Any]) -> httpx.Response:
    built = client.build_request(request["method"], request["path"], content=request["body"],
                                 headers=request["headers"])
    return client.send(built)


def test_collection_doors_never_answer_5xx(kaon_server: KaonServer) -> None:
    server = kaon_server
    with httpx.Client(base_url=server.url, timeout=30) as client:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(request=requests(server))
        def fuzz(request: dict[str, Any]) -> None:
            response = send(client, request)
            assert response.status_code < 500, (request, response.status_code, response.text[:300])

        fuzz()
        assert client.get("/api/v1/health").status_code == 200  # and the server still answers
        ok = client.post("/v2/events", headers=server.basic(), content=json.dumps(
            {"environment": "development", "events": [{"event_type": "custom_event", "data": {
                "event_name": "after-fuzz", "custom_event_type": "other"}}]}).encode())
        assert ok.status_code == 202, ok.text


@pytest.mark.parametrize("path", [
    "/v1/99999999999999999999/modify", "/v1/-99999999999999999999/modify"])
def test_out_of_range_mpid_in_modify_is_refused_not_500(kaon_server: KaonServer, path: str) -> None:
    body = json.dumps({"identity_changes": [{"identity_type": "email", "old_value": None, "new_value": "a@b.c"}]})
    response = httpx.post(kaon_server.url + path, content=body.encode(), timeout=30,
                          headers={"Content-Type": "application/json", **kaon_server.basic()})
    assert response.status_code in (400, 401, 404), response.text


@pytest.mark.parametrize("door", ["/v2/events", "/v1/batch", "/beacon/v1/batch", "/v3/JS/k/events",
                                  "/v1/identify", "/v1/login"])
def test_non_utf8_header_bytes_are_refused_not_500(kaon_server: KaonServer, door: str) -> None:
    with httpx.Client(base_url=kaon_server.url, timeout=30) as client:
        for name in (b"authorization", b"x-mp-key", b"x-mp-signature", b"date"):
            response = send(client, {"method": "POST", "path": door, "body": b"{}", "headers": [
                (b"content-type", b"application/json"), (name, b"Basic \xff\xfe\xe9")]})
            assert response.status_code < 500, (name, response.text)
