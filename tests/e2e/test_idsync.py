"""IDSync (identify, login, logout, search, modify) and aliasing against a real `kaon serve`.

Answers are checked as the web SDK reads them (wire-format reference §3.3, §4): status 200, `mpid` as a
string, `context`, `matched_identities` in IDSync spellings, `is_ephemeral`, `is_logged_in`. Profiles are
read back through the admin API, events through `/api/v1/events` and `/api/v1/profiles/{mpid}/events`.
"""

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import mparticle
import pytest

from support.server import KaonServer
from support.waiting import eventually


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def tag() -> str:
    return uuid.uuid4().hex[:10]


def request(**known: str | None) -> dict[str, Any]:
    return {"client_sdk": {"platform": "web", "sdk_vendor": "mparticle", "sdk_version": "2.68.0"},
            "context": None, "environment": "development", "request_id": str(uuid.uuid4()),
            "request_timestamp_ms": now_ms(), "known_identities": known}


def call(server: KaonServer, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}{path}", content=raw, timeout=30,
                      headers={"Content-Type": "application/json", **(server.basic() if headers is None else headers)})


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def identity_answer(response: httpx.Response) -> dict[str, Any]:
    body = ok(response)
    assert set(body) >= {"context", "mpid", "matched_identities", "is_ephemeral", "is_logged_in"}, body
    assert isinstance(body["mpid"], str) and int(body["mpid"]) != 0
    assert body["is_ephemeral"] is False
    assert isinstance(body["is_logged_in"], bool)
    assert isinstance(body["matched_identities"], dict)
    return body


def error_code(response: httpx.Response, status: int = 400) -> tuple[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errors"] == body["Errors"]  # both spellings the web SDK reads
    return body["errors"][0]["code"], body["errors"][0]["message"]


def lookup(server: KaonServer, identity_type: str, value: str) -> dict[str, Any] | None:
    """The profile holding the identity (`GET /profiles?identity_type=&value=`), or None."""
    return server.profile(identity_type, value)


def hmac_headers(server: KaonServer, path: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    message = f"POST\n{date}\n{path}".encode() + body
    signature = hmac.new((secret or server.server_secret).encode(), message, hashlib.sha256).hexdigest()
    return {"x-mp-key": server.server_key, "Date": date, "x-mp-signature": signature}


def upload(server: KaonServer, batch: dict[str, Any]) -> None:
    response = httpx.post(f"{server.url}/v2/events", json=batch, headers=server.basic(), timeout=30)
    assert response.status_code == 202, response.text


def custom(name: str, at: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"event_name": name, "custom_event_type": "other", "source_message_id": str(uuid.uuid4())}
    if at is not None:
        data["timestamp_unixtime_ms"] = at
    return {"event_type": "custom_event", "data": data}


def stored(server: KaonServer, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        found = server.events_named(name)
        return found[0] if found else {}
    event = eventually(probe, timeout=20, what=f"event {name!r} stored")
    return event


def profile_event_names(server: KaonServer, mpid: str) -> list[str]:
    response = server.admin("GET", f"/profiles/{mpid}/events")
    assert response.status_code == 200, response.text
    return [e["event_name"] for e in response.json()["events"]]


# Answers

def test_identify_login_search_logout_modify_answer_as_the_sdk_expects(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    cid, email, stamp = f"cust-{t}", f"Jane-{t}@Example.com", f"das-{t}"
    first = identity_answer(call(server, "/v1/identify",
                                 request(customerid=cid, email=email, device_application_stamp=stamp)))
    assert first["is_logged_in"] is True
    mpid = first["mpid"]

    again = identity_answer(call(server, "/v1/identify", request(customerid=cid, email=email.upper())))
    assert again["mpid"] == mpid
    assert again["matched_identities"] == {"customerid": cid, "email": email.lower()}

    login = identity_answer(call(server, "/v1/login", request(customerid=cid, device_application_stamp=stamp)))
    assert login["mpid"] == mpid and login["is_logged_in"] is True
    assert login["matched_identities"] == {"customerid": cid, "device_application_stamp": stamp}

    search = identity_answer(call(server, "/v1/search", request(email=email)))
    assert search["mpid"] == mpid and search["matched_identities"] == {"email": email.lower()}
    assert search["is_logged_in"] is False  # no login id in the request

    logout = identity_answer(call(server, "/v1/logout", request(device_application_stamp=stamp)))
    assert logout["mpid"] != mpid and logout["is_logged_in"] is False

    # Also under the CNAME prefix.
    prefixed = identity_answer(call(server, "/identity/v1/identify", request(customerid=cid)))
    assert prefixed["mpid"] == mpid

    modify = ok(call(server, f"/v1/{mpid}/modify", {"environment": "development", "identity_changes": [
        {"identity_type": "other", "old_value": None, "new_value": f"o-{t}"},
        {"identity_type": "email", "old_value": email, "new_value": f"new-{t}@example.com"}]}))
    assert modify == {"change_results": [{"identity_type": "other", "modified_mpid": mpid},
                                         {"identity_type": "email", "modified_mpid": mpid}]}
    view = server.admin("GET", f"/profiles/{mpid}").json()
    assert {(i["type"], i["value"]) for i in view["user_identities"]} == {
        ("customer_id", cid), ("other", f"o-{t}"), ("email", f"new-{t}@example.com")}
    assert lookup(server, "email", email) is None


# Auth

def test_basic_hmac_and_key_only_auth(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    body = json.dumps(request(customerid=f"auth-{t}")).encode()
    mpid = identity_answer(call(server, "/v1/identify", body))["mpid"]

    signed = identity_answer(call(server, "/v1/identify", body, hmac_headers(server, "/v1/identify", body)))
    assert signed["mpid"] == mpid
    # The signature covers the path: the same headers on another path fail.
    assert call(server, "/v1/login", body, hmac_headers(server, "/v1/identify", body)).status_code == 401
    wrong = hmac_headers(server, "/v1/identify", body, secret="not-the-secret")
    assert error_code(call(server, "/v1/identify", body, wrong), 401)[0] == "UNAUTHORIZED"
    tampered = hmac_headers(server, "/v1/identify", body)
    assert call(server, "/v1/identify", body.replace(b"auth-", b"evil-"), tampered).status_code == 401
    missing_date = {k: v for k, v in hmac_headers(server, "/v1/identify", body).items() if k != "Date"}
    assert call(server, "/v1/identify", body, missing_date).status_code == 401

    web = identity_answer(call(server, "/v1/identify", body, {"x-mp-key": server.web_key}))
    assert web["mpid"] == mpid
    assert call(server, "/v1/identify", body, {"x-mp-key": server.server_key}).status_code == 401
    assert call(server, "/v1/login", body, {"x-mp-key": "no-such-key"}).status_code == 401
    assert call(server, "/v1/login", body, server.basic(secret="wrong")).status_code == 401
    assert call(server, "/v1/search", body, {}).status_code == 401
    # Nothing was created for the evil body.
    assert lookup(server, "customerid", f"evil-{t}") is None


def test_cors_preflight_on_identify(kaon_server: KaonServer) -> None:
    origin = "http://page.example:8123"
    response = httpx.options(f"{kaon_server.url}/v1/identify", timeout=30, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-mp-key"})
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] in (origin, "*")
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"x-mp-key", "content-type"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    # The actual call answers with the origin too.
    answer = call(kaon_server, "/v1/identify", request(email=f"cors-{tag()}@x.io"),
                  {"x-mp-key": kaon_server.web_key, "Origin": origin})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] in (origin, "*")


# Not found, never created

def test_search_for_an_unknown_person_is_404_and_creates_nothing(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    response = call(server, "/v1/search", request(email=f"nobody-{t}@x.io", customerid=f"nobody-{t}"))
    assert error_code(response, 404)[0] == "NOT_FOUND"
    assert lookup(server, "email", f"nobody-{t}@x.io") is None
    assert lookup(server, "customerid", f"nobody-{t}") is None


def test_search_does_not_link_identities(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    mpid = identity_answer(call(server, "/v1/identify", request(email=f"s-{t}@x.io")))["mpid"]
    found = identity_answer(call(server, "/v1/search", request(email=f"s-{t}@x.io", other=f"o-{t}")))
    assert found["mpid"] == mpid and found["matched_identities"] == {"email": f"s-{t}@x.io"}
    assert lookup(server, "other", f"o-{t}") is None


def test_modify_never_creates_a_profile(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    unknown = 7_000_000_000_000_000_000 + int(t[:6], 16)
    body = {"identity_changes": [{"identity_type": "email", "old_value": None, "new_value": f"m-{t}@x.io"}]}
    assert error_code(call(server, f"/v1/{unknown}/modify", body), 404)[0] == "NOT_FOUND"
    assert server.admin("GET", f"/profiles/{unknown}").status_code == 404
    assert lookup(server, "email", f"m-{t}@x.io") is None


def test_modify_moves_a_unique_id(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    a = identity_answer(call(server, "/v1/identify", request(customerid=f"ca-{t}", email=f"a-{t}@x.io")))["mpid"]
    b = identity_answer(call(server, "/v1/identify", request(customerid=f"cb-{t}")))["mpid"]
    assert a != b
    ok(call(server, f"/v1/{b}/modify", {"identity_changes": [
        {"identity_type": "customerid", "old_value": None, "new_value": f"ca-{t}"}]}))
    assert (lookup(server, "customerid", f"ca-{t}") or {}).get("mpid") == b
    assert lookup(server, "customerid", f"cb-{t}") is None  # unique: b's old id is gone
    a_view = server.admin("GET", f"/profiles/{a}").json()
    assert [(i["type"], i["value"]) for i in a_view["user_identities"]] == [("email", f"a-{t}@x.io")]
    # identify by the moved id now answers b.
    assert identity_answer(call(server, "/v1/identify", request(customerid=f"ca-{t}")))["mpid"] == b


# Malformed requests

@pytest.mark.parametrize(("path", "body", "code", "field"), [
    ("/v1/identify", {"known_identities": {"frequent_flyer": "x"}}, "UNKNOWN_IDENTITY_TYPE", "frequent_flyer"),
    ("/v1/login", {"known_identities": ["customerid", "c1"]}, "INVALID_SHAPE", "known_identities"),
    ("/v1/search", {"known_identities": "c1"}, "INVALID_SHAPE", "known_identities"),
    # (/v1/identify with Basic auth and no `known_identities` is a Segment identify: IDSync-only paths here.)
    ("/v1/login", {"environment": "production"}, "INVALID_SHAPE", "known_identities"),
    ("/v1/logout", {"known_identities": {"email": 42}}, "INVALID_SHAPE", "known_identities"),
    ("/v1/login", {"known_identities": {}}, "INVALID_SHAPE", "known_identities"),
    ("/v1/search", b"{not json", "INVALID_JSON", None),
])
def test_malformed_identity_requests_are_400_naming_the_field(
    kaon_server: KaonServer, path: str, body: Any, code: str | None, field: str | None,
) -> None:
    found, message = error_code(call(kaon_server, path, body))
    if code is not None:
        assert found == code
    if field is not None:
        assert field in message


def test_malformed_modify_is_400_naming_the_field(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    mpid = identity_answer(call(server, "/v1/identify", request(customerid=f"mm-{t}")))["mpid"]
    code, message = error_code(call(server, f"/v1/{mpid}/modify", {"environment": "production"}))
    assert code == "INVALID_SHAPE" and "identity_changes" in message
    code, message = error_code(call(server, f"/v1/{mpid}/modify", {"identity_changes": [
        {"identity_type": "loyalty", "new_value": "x"}]}))
    assert code == "UNKNOWN_IDENTITY_TYPE" and "identity_changes[0].identity_type" in message


def test_nothing_partial_is_written_on_error(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    # identify: a valid identity next to an unknown type creates nothing.
    assert error_code(call(server, "/v1/identify", request(customerid=f"p-{t}", loyalty="x")))[0] == (
        "UNKNOWN_IDENTITY_TYPE")
    assert lookup(server, "customerid", f"p-{t}") is None
    # modify: the first change is valid, the second is not: the first is rolled back.
    mpid = identity_answer(call(server, "/v1/identify", request(customerid=f"q-{t}", email=f"q-{t}@x.io")))["mpid"]
    before = server.admin("GET", f"/profiles/{mpid}").json()
    response = call(server, f"/v1/{mpid}/modify", {"identity_changes": [
        {"identity_type": "email", "old_value": f"q-{t}@x.io", "new_value": f"q2-{t}@x.io"},
        {"identity_type": "other", "old_value": None, "new_value": f"o-{t}"},
        {"identity_type": "loyalty", "old_value": None, "new_value": "x"}]})
    assert error_code(response)[0] == "UNKNOWN_IDENTITY_TYPE"
    after = server.admin("GET", f"/profiles/{mpid}").json()
    assert after["user_identities"] == before["user_identities"]
    assert lookup(server, "email", f"q2-{t}@x.io") is None
    assert (lookup(server, "email", f"q-{t}@x.io") or {}).get("mpid") == mpid
    # A blocked value in a modify is refused as a whole too.
    response = call(server, f"/v1/{mpid}/modify", {"identity_changes": [
        {"identity_type": "other", "old_value": None, "new_value": f"o-{t}"},
        {"identity_type": "email", "old_value": None, "new_value": "Test@Test.com"}]})
    assert error_code(response)[0] == "BLOCKED_IDENTITY"
    assert lookup(server, "other", f"o-{t}") is None


# The shared /v1/identify path

def test_v1_identify_still_serves_the_segment_spec(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    response = httpx.post(f"{server.url}/v1/identify", auth=(server.web_key, ""), timeout=30,
                          json={"userId": f"seg-{t}", "traits": {"plan": "pro"}, "messageId": f"msg-{t}"})
    assert response.status_code == 200, response.text
    assert "mpid" not in response.json()  # a Segment answer, not an IDSync one

    def changes() -> list[dict[str, Any]]:
        return [e for e in server.events() if e["event_type"] == "user_identity_change"
                and e["data"]["new"]["identity"] == f"seg-{t}"]
    found = eventually(changes, timeout=20, what="the Segment identify stored")
    assert len(found) == 1 and found[0]["mpid"] is not None
    # The Segment call's profile holds the user id: IDSync finds it by the same customer id.
    answer = identity_answer(call(server, "/v1/search", request(customerid=f"seg-{t}")))
    assert answer["mpid"] == found[0]["mpid"]


# Batches and IDSync agree

def test_a_batch_with_identities_is_resolved_to_the_idsync_profile(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    mpid = identity_answer(call(server, "/v1/identify", request(customerid=f"b-{t}")))["mpid"]
    upload(server, {"environment": "production", "user_identities": {"customer_id": f"b-{t}",
                                                                     "email": f"B-{t}@x.io"},
                    "events": [custom(f"batch-{t}")]})
    event = stored(server, f"batch-{t}")
    assert event["mpid"] == mpid
    assert f"batch-{t}" in profile_event_names(server, mpid)
    # The batch's email is now on the profile (normalised), so IDSync matches it.
    by_email = identity_answer(call(server, "/v1/identify", request(email=f"b-{t}@x.io")))
    assert by_email["mpid"] == mpid and by_email["matched_identities"] == {"email": f"b-{t}@x.io"}


def test_the_mparticle_sdk_batch_lands_on_the_idsync_profile(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    cfg = mparticle.Configuration()
    cfg.api_key, cfg.api_secret, cfg.host = server.server_key, server.server_secret, f"{server.url}/v2"
    batch = mparticle.Batch()
    batch.environment = "development"
    batch.user_identities = mparticle.UserIdentities(customerid=f"sdk-{t}")
    batch.events = [mparticle.AppEvent(f"sdk-{t}", "navigation")]
    _, status, _ = mparticle.EventsApi(cfg).upload_events_with_http_info(batch)
    assert status == 202
    event = stored(server, f"sdk-{t}")
    assert event["mpid"] is not None
    answer = identity_answer(call(server, "/v1/identify", request(customerid=f"sdk-{t}")))
    assert answer["mpid"] == event["mpid"]
    assert answer["matched_identities"] == {"customerid": f"sdk-{t}"}


# Alias

def alias_body(server: KaonServer, source: str, destination: str, start: int | None, end: int | None,
               stamp: str | None = None) -> bytes:
    data: dict[str, Any] = {"source_mpid": source, "destination_mpid": destination, "scope": "device"}
    if stamp is not None:  # the web SDK sends the device's stamp; a key-only alias must name the source's
        data["device_application_stamp"] = stamp
    if start is not None:
        data["start_unixtime_ms"] = start
    if end is not None:
        data["end_unixtime_ms"] = end
    return json.dumps({"request_id": str(uuid.uuid4()), "request_type": "alias", "environment": "development",
                       "api_key": server.web_key, "data": data}).encode()


def web_alias(server: KaonServer, body: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/identity/{server.web_key}/Alias", content=body, timeout=30,
                      headers={"Content-Type": "application/json"})


def test_web_alias_copies_the_source_events_in_the_window(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    source = identity_answer(call(server, "/v1/identify", request(device_application_stamp=f"das-{t}"),
                                  {"x-mp-key": server.web_key}))["mpid"]
    destination = identity_answer(call(server, "/v1/login", request(customerid=f"al-{t}"),
                                       {"x-mp-key": server.web_key}))["mpid"]
    assert source != destination
    now = now_ms()
    upload(server, {"environment": "development", "mpid": int(source), "events": [
        custom(f"inside-{t}", now - 60_000), custom(f"before-{t}", now - 3 * 86_400_000)]})
    for name in (f"inside-{t}", f"before-{t}"):
        assert stored(server, name)["mpid"] == source
    response = web_alias(server, alias_body(server, source, destination, now - 3_600_000, now, f"das-{t}"))
    assert response.status_code in (200, 202), response.text
    destination_events = eventually(lambda: profile_event_names(server, destination), timeout=10,
                                    what="copied events on the destination")
    assert f"inside-{t}" in destination_events
    assert f"before-{t}" not in destination_events
    assert set(profile_event_names(server, source)) == {f"inside-{t}", f"before-{t}"}  # copied, not moved

    # Refusals, each with its code (mParticle's rules, through the server door: the web door refuses a source
    # that is not this device's anonymous profile first, see test_idsync_webkey.py).
    third = identity_answer(call(server, "/v1/identify", request(email=f"third-{t}@x.io")))["mpid"]
    refusals = [
        (alias_body(server, source, source, now - 1000, now), "ALIAS_SAME_MPID"),
        (alias_body(server, "1234567", destination, now - 1000, now), "ALIAS_UNKNOWN_MPID"),
        (alias_body(server, third, "7654321", now - 1000, now), "ALIAS_UNKNOWN_MPID"),
        (alias_body(server, destination, third, now - 1000, now), "ALIAS_SOURCE_WAS_DESTINATION"),
        (alias_body(server, third, source, now - 1000, now), "ALIAS_DESTINATION_WAS_SOURCE"),
        (alias_body(server, source, third, now - 1_800_000, now + 1000), "ALIAS_OVERLAP"),
        (alias_body(server, third, destination, now, now - 1000), "ALIAS_INVALID_WINDOW"),
        (alias_body(server, third, destination, now - 91 * 86_400_000, now), "ALIAS_INVALID_WINDOW"),
    ]
    for body, code in refusals:
        response = call(server, "/v1/identity/alias", body)
        assert response.status_code == 400, (code, response.text)
        assert response.json()["errors"][0]["code"] == code, response.text
    assert f"inside-{t}" not in profile_event_names(server, third)
    # A later, non-overlapping window of the same source is accepted.
    later = web_alias(server, alias_body(server, source, third, now + 10_000, now + 20_000, f"das-{t}"))
    assert later.status_code in (200, 202), later.text


def test_server_alias_needs_basic_auth(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    a = identity_answer(call(server, "/v1/identify", request(email=f"sa-{t}@x.io")))["mpid"]
    b = identity_answer(call(server, "/v1/identify", request(customerid=f"sb-{t}")))["mpid"]
    body = alias_body(server, a, b, None, None)
    assert call(server, "/v1/identity/alias", body, {}).status_code == 401
    assert call(server, "/v1/identity/alias", body).status_code in (200, 202)
