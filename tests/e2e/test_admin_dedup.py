"""Message-id dedup seen through the admin API of a real `kaon serve`: once per workspace, within the window."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.server import KaonServer, kaon
from support.waiting import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def event(name: str, message_id: str) -> bytes:
    return json.dumps({"events": [{"event_type": "custom_event",
                                   "data": {"event_name": name, "source_message_id": message_id}}]}).encode()


@pytest.fixture(scope="module")
def two_workspaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KaonServer, dict[str, Any]]]:
    data_dir: Path = tmp_path_factory.mktemp("dedup")
    server = KaonServer(data_dir)
    done = kaon("init", "--workspace", "other", "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    server.start()
    yield server, json.loads(done.stdout)
    server.stop()


def other_events(server: KaonServer, other: dict[str, Any], name: str) -> list[dict[str, Any]]:
    page = httpx.get(f"{server.url}/api/v1/events", params={"limit": 1000}, timeout=30,
                     headers={"Authorization": f"Bearer {other['admin_token']}"}).json()
    return [e for e in page["events"] if e["event_name"] == name]


def duplicates(server: KaonServer, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token or server.admin_token}"}
    rows = httpx.get(f"{server.url}/api/v1/stats", headers=headers, timeout=30).json()["stats"]
    return sum(r["events_duplicate"] for r in rows)


def test_same_message_id_twice_is_stored_once(two_workspaces: tuple[KaonServer, dict[str, Any]]) -> None:
    server, _ = two_workspaces
    name, message_id = unique("dup"), unique("msg")
    before = duplicates(server)
    with httpx.Client(base_url=server.url, headers=server.basic(), timeout=30) as client:
        assert client.post("/v2/events", content=event(name, message_id)).status_code == 202
        assert client.post("/v2/events", content=event(name, message_id)).status_code == 202
        marker = unique("marker")  # processed after both: once it is stored, both were processed
        assert client.post("/v2/events", content=event(marker, unique("msg"))).status_code == 202
    eventually(lambda: server.events_named(marker), what="marker stored")
    eventually(lambda: duplicates(server) == before + 1, what="one duplicate counted")
    stored = server.events_named(name)
    assert len(stored) == 1
    assert stored[0]["source_message_id"] == message_id


def test_dedup_is_per_workspace(two_workspaces: tuple[KaonServer, dict[str, Any]]) -> None:
    server, other = two_workspaces
    other_server = next(i for i in other["inputs"] if i["platform"] == "server")
    name, message_id = unique("ws"), unique("msg")
    assert httpx.post(f"{server.url}/v2/events", content=event(name, message_id), headers=server.basic(),
                      timeout=30).status_code == 202
    assert httpx.post(f"{server.url}/v2/events", content=event(name, message_id), timeout=30,
                      headers=server.basic(other_server["key"], other_server["secret"])).status_code == 202
    eventually(lambda: len(server.events_named(name)) == 1, what="stored in the default workspace")
    eventually(lambda: len(other_events(server, other, name)) == 1, what="stored in the other workspace too")
    assert duplicates(server, other["admin_token"]) == 0


def test_repeat_after_the_window_is_stored_again(tmp_path: Path) -> None:
    server = KaonServer(tmp_path / "data", env={"KAON_DEDUP_WINDOW_HOURS": "0.0003"}).start()  # ≈ 1.1 s
    try:
        name, message_id = unique("win"), unique("msg")
        with httpx.Client(base_url=server.url, headers=server.basic(), timeout=30) as client:
            assert client.post("/v2/events", content=event(name, message_id)).status_code == 202
            eventually(lambda: server.events_named(name), what="first stored")

            def resent_and_stored() -> bool:
                assert client.post("/v2/events", content=event(name, message_id)).status_code == 202
                return len(server.events_named(name)) >= 2

            eventually(resent_and_stored, timeout=15, interval=0.3, what="stored again after the window")
        assert duplicates(server) >= 1  # the resends inside the window were deduplicated
    finally:
        server.stop()
