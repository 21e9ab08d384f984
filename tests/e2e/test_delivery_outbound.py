"""Outbound requests and send faults end to end: the outbound policy at creation and at send time, redirects,
and ids or headers that once wedged a webhook output — a real `kaon serve` and local capture servers."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.capture import Answer, VendorCapture
from support.server import KaonServer
from support.waiting import eventually

RETRY_ENV = {"KAON_RETRY_BASE_SECONDS": "0.2", "KAON_RETRY_CAP_SECONDS": "0.5", "KAON_RETRY_MAX_ATTEMPTS": "3",
             "KAON_RETRY_WINDOW_SECONDS": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    running = KaonServer(tmp_path_factory.mktemp("outbound"), env=RETRY_ENV).start()  # lists 127.0.0.1 only
    yield running
    running.stop()


def batch(customer: str, *events: tuple[str, str | None]) -> bytes:
    """A server batch of custom events (name, source_message_id or None)."""
    return json.dumps({"environment": "production", "user_identities": {"customer_id": customer}, "events": [
        {"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other",
                                                **({"source_message_id": mid} if mid else {})}}
        for name, mid in events]}).encode()


def post(server: KaonServer, body: bytes) -> None:
    assert httpx.post(f"{server.url}/v2/events", content=body, headers=server.basic()).status_code == 202


def create(server: KaonServer, settings: dict[str, Any], destination: str = "webhook") -> httpx.Response:
    return server.admin("POST", "/outputs", json={"name": f"o-{uuid.uuid4().hex[:8]}", "destination": destination,
                                                  "settings": settings})


def connect(server: KaonServer, url: str, **settings: Any) -> str:
    output = create(server, {"base_url": url, **settings})
    assert output.status_code == 201, output.text
    connection = server.admin("POST", "/connections", json={"input_id": server.input("server")["id"],
                                                            "output_id": output.json()["id"]})
    assert connection.status_code == 201, connection.text
    return str(output.json()["id"])


def names(capture: VendorCapture) -> list[str]:
    return [r.json()["data"]["event_name"] for r in capture.requests()]


def totals(server: KaonServer, output_id: str) -> dict[str, int]:
    hours = server.admin("GET", f"/outputs/{output_id}/status").json()["hours"]
    return {k: sum(h[k] for h in hours) for k in ("sent", "failed", "dead_lettered")}


def refusal(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    error: dict[str, Any] = answer.json()["errors"][0]
    return error


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[fe80::1]/",
    "http://127.0.0.2:8080/", "http://[::1]/", "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/",
    "http://[fc00::1]/", "http://100.64.0.1/", "http://0.0.0.0/", "http://224.0.0.1/", "http://240.0.0.1/",
])
def test_an_output_to_a_refused_address_is_refused_at_creation(server: KaonServer, url: str) -> None:
    error = refusal(create(server, {"base_url": url}))
    assert error["code"] == "OUTBOUND_REFUSED" and "KAON_OUTBOUND_ALLOW" in error["message"]


def test_updates_and_every_destination_are_checked(server: KaonServer, capture: VendorCapture) -> None:
    output_id = connect(server, f"{capture.url}/hook")  # 127.0.0.1 is listed for this server
    moved = server.admin("PATCH", f"/outputs/{output_id}", json={"settings": {"base_url": "http://10.1.1.1/"}})
    assert refusal(moved)["code"] == "OUTBOUND_REFUSED"
    assert server.admin("GET", f"/outputs/{output_id}").json()["settings"]["base_url"] == f"{capture.url}/hook"
    for destination, settings in [
            ("postgres", {"dsn": "postgresql://u:p@10.0.0.5:5432/db"}),
            ("postgres", {"dsn": "host=169.254.169.254 dbname=x"}),
            ("amplitude", {"api_key": "k", "base_url": "http://169.254.169.254"}),
            ("slack", {"base_url": "http://192.168.0.10/hook"})]:
        assert refusal(create(server, settings, destination))["code"] == "OUTBOUND_REFUSED", destination
    # A listed address, and a name resolving to it, are allowed.
    assert create(server, {"base_url": f"{capture.url}/x"}).status_code == 201
    assert create(server, {"base_url": capture.url.replace("127.0.0.1", "localhost")}).status_code == 201


def test_a_redirect_is_not_followed(server: KaonServer) -> None:
    target = VendorCapture().start()
    redirecting = VendorCapture(Answer(302, {"Location": f"{target.url}/metadata"}, b"")).start()
    try:
        output_id = connect(server, f"{redirecting.url}/hook")
        tag = uuid.uuid4().hex[:6]
        post(server, batch(f"redir-{tag}", (f"r-{tag}", None)))
        eventually(lambda: totals(server, output_id)["dead_lettered"] == 1, timeout=20, what="aborted on the 302")
        assert len(redirecting.requests()) == 1 and target.requests() == []
    finally:
        target.stop()
        redirecting.stop()


def test_a_non_ascii_or_multiline_message_id_is_delivered_once(server: KaonServer, capture: VendorCapture) -> None:
    """Fix: `r-café` raised out of `send`, the claimed batch (other users' events with it) was re-sent every
    second for 24 h, unrecorded; a newline held the user's later events behind it."""
    output_id = connect(server, f"{capture.url}/hook", batch=True)
    tag = uuid.uuid4().hex[:6]
    post(server, batch(f"cafe-{tag}", (f"cafe-{tag}", f"r-café-{tag}"), (f"nl-{tag}", f"line\nbreak-{tag}")))
    post(server, batch(f"other-{tag}", (f"other-{tag}", None)))
    post(server, batch(f"cafe-{tag}", (f"later-{tag}", None)))

    def delivered() -> list[str]:
        return [e["data"]["event_name"] for r in capture.requests() for e in r.json()["batch"]]

    eventually(lambda: len(delivered()) == 4, timeout=20, what="the four events delivered")
    assert sorted(delivered()) == sorted([f"cafe-{tag}", f"nl-{tag}", f"other-{tag}", f"later-{tag}"])
    keys = ",".join(r.headers["idempotency-key"] for r in capture.requests())
    assert f"r-caf%C3%A9-{tag}" in keys and f"line%0Abreak-{tag}" in keys
    eventually(lambda: totals(server, output_id)["sent"] == 4, timeout=20, what="4 sent recorded")
    assert totals(server, output_id)["failed"] == totals(server, output_id)["dead_lettered"] == 0


def test_a_header_that_cannot_be_sent_is_refused_at_creation(server: KaonServer, capture: VendorCapture) -> None:
    for headers in ({"X-Team": "équipe"}, {"X-Team": "a\r\nX-Injected: 1"}, {"Bad Name": "v"}):
        answer = create(server, {"base_url": f"{capture.url}/hook", "headers": headers})
        assert refusal(answer)["code"] == "INVALID_SETTINGS", headers


def test_an_address_refused_later_is_refused_at_send_time(tmp_path: Path, capture: VendorCapture) -> None:
    """An output saved while 127.0.0.1 was listed; the operator then narrows the policy: nothing reaches the
    address, the events are dead-lettered with the reason (replayable), and the test send says why."""
    server = KaonServer(tmp_path / "data", env=RETRY_ENV).start()
    try:
        output_id = connect(server, f"{capture.url}/hook")
        server.stop()
        server.env["KAON_OUTBOUND_ALLOW"] = ""
        server.start()
        post(server, batch("narrowed", ("narrowed", None)))
        eventually(lambda: totals(server, output_id)["dead_lettered"] == 1, timeout=20, what="dead-lettered")
        assert capture.requests() == []
        alerts = server.admin("GET", "/alerts").json()
        assert "KAON_OUTBOUND_ALLOW" in json.dumps(alerts)
        tested = server.admin("POST", f"/outputs/{output_id}/test").json()
        assert tested["outcome"] == "abort" and "KAON_OUTBOUND_ALLOW" in tested["message"]
        assert capture.requests() == []
    finally:
        server.stop()
