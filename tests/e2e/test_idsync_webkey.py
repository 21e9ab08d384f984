"""The public web key against a real `kaon serve`: what IDSync lets it do, and the HMAC and path edge cases.

Each attack runs with the web key (`x-mp-key` alone, or the key in the alias path) and is refused with a stable
code; the server credential (Basic key:secret) still does what it legitimately may. Raw requests (httpx with
byte headers, a raw socket) check that odd headers and mpids answer 4xx, never 500.
"""

import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually


def tag() -> str:
    return uuid.uuid4().hex[:10]


def request(**known: str) -> dict[str, Any]:
    return {"client_sdk": {"platform": "web", "sdk_vendor": "mparticle", "sdk_version": "2.68.0"},
            "environment": "development", "request_id": str(uuid.uuid4()), "known_identities": known}


def post(server: KaonServer, path: str, body: Any, headers: dict[str, Any]) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}{path}", content=raw, timeout=30,
                      headers={"Content-Type": "application/json", **headers})


def web(server: KaonServer) -> dict[str, Any]:
    return {"x-mp-key": server.web_key}


def mpid_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["mpid"])


def code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errors"] == body["Errors"]
    return str(body["errors"][0]["code"])


def rejection_codes(server: KaonServer) -> set[str]:
    return {r["code"] for r in server.listed("/rejections", "rejections")}


# Item 1: no takeover with the web key

def test_web_modify_cannot_move_a_victims_customer_id(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    victim = mpid_of(post(server, "/v1/identify", request(customerid=f"victim-{t}"), web(server)))
    attacker = mpid_of(post(server, "/v1/identify", request(customerid=f"attacker-{t}"), web(server)))
    change = {"environment": "development", "identity_changes": [
        {"identity_type": "customerid", "old_value": f"attacker-{t}", "new_value": f"victim-{t}"}]}
    assert code(post(server, f"/v1/{attacker}/modify", change, web(server)), 400) == "IDENTITY_CLAIMED"
    assert mpid_of(post(server, "/v1/identify", request(customerid=f"victim-{t}"), web(server))) == victim
    # The server credential still moves it (mParticle's modify of a unique id).
    assert post(server, f"/v1/{attacker}/modify", change, server.basic()).status_code == 200
    assert mpid_of(post(server, "/v1/identify", request(customerid=f"victim-{t}"), server.basic())) == attacker


def test_web_login_with_a_victims_email_does_not_merge_the_victim(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    victim = mpid_of(post(server, "/v1/identify", request(email=f"victim-{t}@x.io"), server.basic()))
    attacker = mpid_of(post(server, "/v1/login", request(customerid=f"attacker-{t}"), web(server)))
    attack = request(customerid=f"attacker-{t}", email=f"victim-{t}@x.io")
    assert mpid_of(post(server, "/v1/login", attack, web(server))) == attacker
    held = server.profile("email", f"victim-{t}@x.io")
    assert held is not None and str(held["mpid"]) == victim
    assert server.admin("GET", f"/profiles/{victim}/merges").json()["merges"] == []
    eventually(lambda: "IDENTITY_MERGE_REFUSED" in rejection_codes(server), timeout=20,
               what="the refused merge listed in /rejections")
    # The server credential unifies them (identities seen together belong to one profile).
    assert mpid_of(post(server, "/v1/login", attack, server.basic())) == attacker
    moved = server.profile("email", f"victim-{t}@x.io")
    assert moved is not None and str(moved["mpid"]) == attacker


def alias_body(server: KaonServer, source: str, destination: str, stamp: str | None) -> bytes:
    data: dict[str, Any] = {"source_mpid": source, "destination_mpid": destination, "scope": "device"}
    if stamp is not None:
        data["device_application_stamp"] = stamp
    return json.dumps({"request_type": "alias", "environment": "development", "api_key": server.web_key,
                       "data": data}).encode()


def test_web_alias_door_cannot_copy_a_victims_events(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    victim = mpid_of(post(server, "/v1/identify", request(customerid=f"victim-{t}",
                                                         device_application_stamp=f"das-v-{t}"), web(server)))
    attacker = mpid_of(post(server, "/v1/login", request(customerid=f"attacker-{t}"), web(server)))
    door = f"/v1/identity/{server.web_key}/Alias"
    assert code(post(server, door, alias_body(server, victim, attacker, None), {}), 400) == "ALIAS_DEVICE_MISMATCH"
    assert code(post(server, door, alias_body(server, victim, attacker, f"das-v-{t}"), {}), 400) \
        == "ALIAS_SOURCE_KNOWN"
    # The server alias door may alias them.
    assert post(server, "/v1/identity/alias", alias_body(server, victim, attacker, None),
                server.basic()).status_code in (200, 202)


# Item 2: search is a server operation; identify answers reveal nothing to a web key

def test_search_needs_a_server_credential(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    post(server, "/v1/identify", request(email=f"s-{t}@x.io"), server.basic())
    assert code(post(server, "/v1/search", request(email=f"s-{t}@x.io"), web(server)), 403) \
        == "SERVER_CREDENTIAL_REQUIRED"
    assert code(post(server, "/v1/search", request(email=f"none-{t}@x.io"), web(server)), 403) \
        == "SERVER_CREDENTIAL_REQUIRED"
    assert post(server, "/v1/search", request(email=f"s-{t}@x.io"), server.basic()).status_code == 200


def test_web_identify_answers_are_alike_for_known_and_unknown_people(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    post(server, "/v1/identify", request(email=f"k-{t}@x.io", customerid=f"k-{t}"), server.basic())
    post(server, "/v1/identify", request(email=f"e-{t}@x.io"), server.basic())
    answers = [post(server, path, request(**known), web(server)) for path, known in (
        ("/v1/identify", {"email": f"k-{t}@x.io"}), ("/v1/identify", {"email": f"e-{t}@x.io"}),
        ("/v1/identify", {"email": f"u-{t}@x.io"}), ("/v1/login", {"customerid": f"k-{t}"}),
        ("/v1/login", {"customerid": f"u-{t}"}))]
    shapes = [(a.status_code, {k: v for k, v in a.json().items() if k != "mpid"}) for a in answers]
    assert shapes[0] == shapes[1] == shapes[2] == (200, {"context": None, "is_ephemeral": False,
                                                          "is_logged_in": False, "matched_identities": {}})
    assert shapes[3] == shapes[4] == (200, {"context": None, "is_ephemeral": False, "is_logged_in": True,
                                            "matched_identities": {}})


# Item 4: HMAC Date window, odd headers, odd mpids

def hmac_headers(server: KaonServer, path: str, body: bytes, when: datetime) -> dict[str, str]:
    date = when.strftime("%Y%m%dT%H%M%SZ")
    signature = hmac.new(server.server_secret.encode(), f"POST\n{date}\n{path}".encode() + body,
                         hashlib.sha256).hexdigest()
    return {"x-mp-key": server.server_key, "Date": date, "x-mp-signature": signature}


def test_hmac_date_outside_the_window_and_replays_are_refused(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    body = json.dumps(request(customerid=f"h-{t}")).encode()
    now = datetime.now(UTC)
    assert post(server, "/v1/identify", body, hmac_headers(server, "/v1/identify", body, now)).status_code == 200
    for stale in (now - timedelta(minutes=6), now + timedelta(minutes=6)):
        refused = post(server, "/v1/identify", body, hmac_headers(server, "/v1/identify", body, stale))
        assert code(refused, 401) == "INVALID_SIGNATURE_DATE"
    # The same signed request again (a capture played back inside the window) is refused.
    again = json.dumps(request(customerid=f"h2-{t}")).encode()
    signed = hmac_headers(server, "/v1/identify", again, now)
    assert post(server, "/v1/identify", again, signed).status_code == 200
    assert code(post(server, "/v1/identify", again, signed), 401) == "SIGNATURE_REPLAYED"
    unreadable = {**hmac_headers(server, "/v1/identify", body, now), "Date": "Thu, 03 Dec 2026 20:00:00 GMT"}
    assert code(post(server, "/v1/identify", body, unreadable), 401) in ("UNAUTHORIZED", "INVALID_SIGNATURE_DATE")


def raw_status(server: KaonServer, head: bytes) -> int:
    """The status of one raw HTTP/1.1 request (bytes as given, no client-side encoding)."""
    body = json.dumps(request(customerid="raw")).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\nConnection: close\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("headers", [
    b"x-mp-key: \xff\xfe\r\n",
    b"x-mp-key: caf\xc3\r\n",
    b"Authorization: Basic \xff\xff\r\n",
    b"x-mp-key: KEY\r\nDate: 2026\xff\r\nx-mp-signature: \xff\r\n",
    b"x-mp-key: \xff\r\nDate: 20261203T200000Z\r\nx-mp-signature: ab\r\n",
])
def test_non_utf8_header_bytes_are_401_not_500(kaon_server: KaonServer, headers: bytes) -> None:
    key = kaon_server.server_key.encode()
    head = b"POST /v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers.replace(b"KEY", key)
    assert raw_status(kaon_server, head) in (400, 401)


@pytest.mark.parametrize("mpid, statuses", [
    ("99999999999999999999", (400,)), ("9223372036854775808", (400,)), ("-9223372036854775809", (400,)),
    ("-99999999999999999999999", (400,)), ("-5", (404,)), ("abc", (404,)), ("12ab", (404,)),
])
def test_odd_mpids_in_modify_are_4xx(kaon_server: KaonServer, mpid: str, statuses: tuple[int, ...]) -> None:
    change = {"identity_changes": [{"identity_type": "email", "old_value": None, "new_value": "x@x.io"}]}
    for headers in (kaon_server.basic(), web(kaon_server)):
        response = post(kaon_server, f"/v1/{mpid}/modify", change, headers)
        assert response.status_code in statuses, (mpid, response.text)


# Item 3: the IDSync doors obey the input's rate limit

@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    """Every input limited to one request per 1000 s: the second call is over the limit, whatever the timing."""
    server = KaonServer(Path(tmp_path_factory.mktemp("limited")), env={"KAON_INPUT_RATE_LIMIT": "0.001"}).start()
    yield server
    server.stop()


def test_idsync_doors_obey_the_input_rate_limit(limited_server: KaonServer) -> None:
    server, t = limited_server, tag()
    assert post(server, "/v1/identify", request(email=f"r-{t}@x.io"), web(server)).status_code == 200
    refused = post(server, "/v1/login", request(email=f"r-{t}@x.io"), web(server))
    assert code(refused, 429) == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1
    # Per input: the server input has its own bucket (and its own limit) on the same doors.
    assert post(server, "/v1/search", request(email=f"r-{t}@x.io"), server.basic()).status_code == 200
    assert code(post(server, "/v1/identify", request(email=f"r-{t}@x.io"), server.basic()), 429) == "RATE_LIMITED"
