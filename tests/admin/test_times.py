"""Time parameters over HTTP: unix ms, ISO-8601 and durations back from now; 400 INVALID_DURATION naming the
parameter wherever a point in time is taken (query parameters and the replay body)."""

import uuid
from typing import Any

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually

POINT_PARAMETERS = [
    ("/events", "since"), ("/events", "until"), ("/stats", "since"), ("/stats", "until"),
    ("/stats/consent", "since"), ("/alerts", "since"), ("/alerts", "until"),
]


@pytest.mark.parametrize(("path", "name"), POINT_PARAMETERS)
@pytest.mark.parametrize("value", ["yesterday", "6 hours", "-5", "1.5h", "6y", "2025-13-01"])
def test_a_bad_point_in_time_is_invalid_duration_naming_the_parameter(kaon_server: KaonServer, path: str,
                                                                       name: str, value: str) -> None:
    response = kaon_server.admin("GET", path, params={name: value})
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "INVALID_DURATION"
    assert f"`{name}`" in error["message"] and "6h" in error["message"]


@pytest.mark.parametrize(("path", "name"), POINT_PARAMETERS)
@pytest.mark.parametrize("value", ["6h", "7d", "30m", "90s", "1764075000000", "2025-11-25T12:00:00Z", "0"])
def test_every_point_form_is_accepted(kaon_server: KaonServer, path: str, name: str, value: str) -> None:
    assert kaon_server.admin("GET", path, params={name: value}).status_code == 200


def test_a_window_of_events_by_receive_time(kaon_server: KaonServer) -> None:
    server = kaon_server
    name = f"Timed {uuid.uuid4().hex[:8]}"
    body = {"events": [{"event_type": "custom_event", "data": {"event_name": name}}]}
    assert httpx.post(f"{server.url}/v2/events", json=body, headers=server.basic(), timeout=30).status_code == 202
    [event] = eventually(lambda: server.events(event_name=name), timeout=30, what="the event stored")
    received = event["received_unixtime_ms"]

    def names(**window: Any) -> list[str]:
        return [e["event_name"] for e in server.events(event_name=name, **window)]

    assert names(since=received, until=received + 1) == [name]
    assert names(since=received + 1) == []
    assert names(until=received) == []
    assert names(since="1h") == [name]
    assert names(until="1h") == []


def test_replay_takes_points_in_time_in_its_body(kaon_server: KaonServer) -> None:
    made = kaon_server.admin("POST", "/outputs", json={"name": f"replayed-{uuid.uuid4().hex[:6]}",
                                                       "destination": "webhook", "enabled": False,
                                                       "settings": {"base_url": "http://127.0.0.1:9/"}})
    output = made.json()["id"]
    for since in ("6h", 0, "2025-11-25T12:00:00Z"):
        answer = kaon_server.admin("POST", f"/outputs/{output}/replay", json={"since": since, "until": "1m"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"output_id": output, "replayed": 0}
    for body, where in (({"since": "soon"}, "body.since"), ({"since": 0, "until": "later"}, "body.until")):
        refused = kaon_server.admin("POST", f"/outputs/{output}/replay", json=body)
        assert refused.status_code == 400
        [error] = refused.json()["errors"]
        assert error["code"] == "INVALID_DURATION" and f"`{where}`" in error["message"]
    assert kaon_server.admin("POST", f"/outputs/{output}/replay", json={"since": 1.5}).status_code == 400
