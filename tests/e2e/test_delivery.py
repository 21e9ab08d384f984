"""Outputs, connections and delivery end to end: a real `kaon serve` delivering to local capture servers."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.capture import VendorCapture
from support.server import KaonServer
from support.waiting import eventually

RETRY_ENV = {"KAON_RETRY_BASE_SECONDS": "0.2", "KAON_RETRY_CAP_SECONDS": "0.5", "KAON_RETRY_MAX_ATTEMPTS": "3",
             "KAON_RETRY_WINDOW_SECONDS": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    running = KaonServer(tmp_path_factory.mktemp("delivery"), env=RETRY_ENV).start()
    yield running
    running.stop()


def batch(customer: str, *names: str, attributes: dict[str, Any] | None = None,
          consent: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"environment": "production", "user_identities": {"customer_id": customer},
                            "events": [{"event_type": "custom_event", "data": {
                                "event_name": n, "custom_event_type": "other",
                                "custom_attributes": attributes or {"i": str(i)}}} for i, n in enumerate(names)]}
    if consent is not None:
        body["consent_state"] = consent
    return json.dumps(body).encode()


def connect(server: KaonServer, capture: VendorCapture, **rules: Any) -> tuple[str, str]:
    output = server.admin("POST", "/outputs", json={"name": f"hook-{uuid.uuid4().hex[:8]}", "destination": "webhook",
                                                     "settings": {"base_url": f"{capture.url}/hook"}})
    assert output.status_code == 201, output.text
    connection = server.admin("POST", "/connections", json={"input_id": server.input("server")["id"],
                                                            "output_id": output.json()["id"], **rules})
    assert connection.status_code == 201, connection.text
    return output.json()["id"], connection.json()["id"]


def post(server: KaonServer, body: bytes) -> None:
    assert httpx.post(f"{server.url}/v2/events", content=body, headers=server.basic()).status_code == 202


def names(capture: VendorCapture) -> list[str]:
    return [r.json()["data"]["event_name"] for r in capture.requests()]


def test_events_reach_the_webhook_in_order(server: KaonServer, capture: VendorCapture) -> None:
    connect(server, capture)
    tag = uuid.uuid4().hex[:6]
    post(server, batch(f"c-{tag}", f"a-{tag}", f"b-{tag}", f"c-{tag}"))
    eventually(lambda: len(names(capture)) == 3, timeout=20, what="3 events delivered")
    assert names(capture) == [f"a-{tag}", f"b-{tag}", f"c-{tag}"]
    body = capture.requests()[0].json()
    assert body["user_identities"]["customer_id"] == f"c-{tag}" and body["mpid"]


def test_filters_count_and_trace_drops(server: KaonServer, capture: VendorCapture) -> None:
    output_id, connection_id = connect(server, capture, filters={"event_names": {"deny": ["noise"]}})
    tag = uuid.uuid4().hex[:6]
    post(server, batch(f"f-{tag}", "noise", f"kept-{tag}"))
    eventually(lambda: names(capture) == [f"kept-{tag}"], timeout=20, what="only the kept event")
    noise = next(e for e in server.events() if e["event_name"] == "noise" and e["input_id"])
    traced = server.admin("GET", f"/events/{noise['id']}/trace").json()
    mine = next(c for c in traced["connections"] if c["connection_id"] == connection_id)
    assert mine == {"connection_id": connection_id, "result": "filtered", "reason": "filter:event_name"}
    hours = server.admin("GET", f"/outputs/{output_id}/status").json()["hours"]
    assert sum(h["filtered"].get("filter:event_name", 0) for h in hours) >= 1
    assert sum(h["sent"] for h in hours) == 1


def test_consent_rule_blocks_without_the_purpose(server: KaonServer, capture: VendorCapture) -> None:
    connect(server, capture, consent={"gdpr_purposes": ["marketing"]})
    tag = uuid.uuid4().hex[:6]
    granted = {"gdpr": {"marketing": {"consented": True, "timestamp_unixtime_ms": 1}}}
    post(server, batch(f"n-{tag}", f"no-consent-{tag}"))
    post(server, batch(f"y-{tag}", f"consent-{tag}", consent=granted))
    eventually(lambda: names(capture) == [f"consent-{tag}"], timeout=20, what="only the consented event")


def test_retries_then_delivers_and_later_events_of_the_user_wait(server: KaonServer, capture: VendorCapture) -> None:
    connect(server, capture)
    capture.answer_next(2, 503)
    tag = uuid.uuid4().hex[:6]
    post(server, batch(f"r-{tag}", f"first-{tag}"))
    post(server, batch(f"r-{tag}", f"second-{tag}"))
    eventually(lambda: f"second-{tag}" in names(capture), timeout=30, what="both delivered after retries")
    delivered = [n for n, r in zip(names(capture), capture.requests(), strict=True)]
    assert delivered.index(f"first-{tag}") < delivered.index(f"second-{tag}")
    assert delivered.count(f"first-{tag}") == 3  # two 503s, then delivered; the second waited for it


def test_dead_letter_after_attempts_and_window_then_replay(server: KaonServer, capture: VendorCapture) -> None:
    output_id, _ = connect(server, capture)
    capture.answer_next(100, 500, body={"error": "down"})
    tag = uuid.uuid4().hex[:6]
    post(server, batch(f"d-{tag}", f"doomed-{tag}"))

    def dead() -> bool:
        hours = server.admin("GET", f"/outputs/{output_id}/status").json()["hours"]
        return sum(h["dead_lettered"] for h in hours) == 1

    eventually(dead, timeout=30, what="dead-lettered after 3 attempts and 1 s")
    alert = [a for a in server.listed("/alerts", "alerts") if a["output_id"] == output_id]
    assert alert and alert[0]["dead_lettered"] == 1 and "HTTP 500" in alert[0]["error"]
    capture.reset_answers()  # the vendor is back
    replayed = server.admin("POST", f"/outputs/{output_id}/replay", json={"since": "1h", "status": "dead"})
    assert replayed.json()["replayed"] == 1
    eventually(lambda: capture.requests()[-1].json()["data"]["event_name"] == f"doomed-{tag}"
               and capture.requests()[-1] is not None and len(capture.requests()) >= 4, timeout=20,
               what="replayed delivery")


def test_bad_configuration_is_refused(server: KaonServer, capture: VendorCapture) -> None:
    bad = server.admin("POST", "/outputs", json={"name": "x", "destination": "webhook", "settings": {"base_url": 7}})
    assert bad.status_code == 400 and "base_url" in bad.text
    unknown = server.admin("POST", "/outputs", json={"name": "y", "destination": "nope", "settings": {}})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["code"] == "UNKNOWN_DESTINATION"
    missing = server.admin("POST", "/connections", json={"input_id": "in_missing", "output_id": "out_missing"})
    assert missing.status_code == 404
    output_id, _ = connect(server, capture)
    bad_rules = server.admin("POST", "/connections", json={"input_id": server.input("server")["id"],
                                                           "output_id": output_id, "sampling_percent": 101})
    assert bad_rules.status_code == 400 and "sampling_percent" in bad_rules.text


def test_delete_with_queued_jobs_needs_force(server: KaonServer, capture: VendorCapture, tmp_path: Path) -> None:
    output_id, _ = connect(server, capture)
    capture.answer_next(1000, 503)
    post(server, batch(f"q-{uuid.uuid4().hex[:6]}", "queued"))
    eventually(lambda: server.admin("GET", f"/outputs/{output_id}/status").json()["queue_depth"] >= 1, timeout=20,
               what="a queued job")
    refused = server.admin("DELETE", f"/outputs/{output_id}")
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "JOBS_QUEUED"
    forced = server.admin("DELETE", f"/outputs/{output_id}", params={"force": "true"})
    assert forced.status_code == 200 and forced.json()["dead_lettered"] >= 1


def test_cli_replay_shows_progress_and_delivers(server: KaonServer, capture: VendorCapture) -> None:
    import subprocess
    import sys

    output_id, _ = connect(server, capture)
    capture.answer_next(100, 500)
    tag = uuid.uuid4().hex[:6]
    post(server, batch(f"cli-{tag}", f"cli-{tag}"))

    def dead() -> bool:
        return sum(h["dead_lettered"] for h in server.admin("GET", f"/outputs/{output_id}/status").json()["hours"]) == 1

    eventually(dead, timeout=30, what="dead-lettered")
    capture.reset_answers()
    done = subprocess.run([sys.executable, "-m", "kaon", "replay", "--data-dir", str(server.data_dir), "--output",
                           output_id, "--since", "1d", "--timeout", "30"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "replaying 1 jobs" in done.stderr and "1/1" in done.stderr
    assert names(capture)[-1] == f"cli-{tag}"


def test_an_output_that_is_down_does_not_hold_back_another(server: KaonServer) -> None:
    down, up = VendorCapture().start(), VendorCapture().start()
    try:
        connect(server, down)
        connect(server, up)
        down.answer_next(10_000, 503)
        tag = uuid.uuid4().hex[:6]
        for n in range(20):
            post(server, batch(f"iso-{tag}-{n}", f"iso-{tag}"))
        eventually(lambda: names(up).count(f"iso-{tag}") == 20, timeout=30, what="the healthy output gets all 20")
        assert all(r.json()["data"]["event_name"] == f"iso-{tag}" for r in down.requests()[-1:])
    finally:
        down.stop()
        up.stop()
