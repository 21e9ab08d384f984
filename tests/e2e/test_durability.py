"""kill -9 after any number of acknowledged requests loses none of them; restart processes them all."""

import json
from pathlib import Path

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually


def _batch(n: int) -> bytes:
    return json.dumps({
        "environment": "development",
        "user_identities": {"customer_id": f"c{n}"},
        "events": [{"event_type": "custom_event",
                    "data": {"event_name": "durable", "custom_event_type": "other",
                             "source_message_id": f"durable-{n}", "custom_attributes": {"n": n}}}],
    }).encode()


@pytest.mark.parametrize("stage", ["process", "thread"])
def test_kill_9_loses_no_acknowledged_event(tmp_path: Path, stage: str) -> None:
    server = KaonServer(tmp_path / "data", env={"KAON_PROCESS_STAGE": stage}).start()
    acknowledged = []
    with httpx.Client(base_url=server.url, headers=server.basic()) as client:
        for n in range(300):
            if client.post("/v2/events", content=_batch(n)).status_code == 202:
                acknowledged.append(n)
    server.kill()  # no drain, no flush: SIGKILL right after the last acknowledgement
    server.start()

    def all_there() -> bool:
        got = {e["data"]["custom_attributes"]["n"] for e in server.events_named("durable")}
        return got >= set(acknowledged)

    try:
        eventually(all_there, timeout=30, what="every acknowledged event processed after restart")
        assert len(acknowledged) == 300
        assert len(server.events_named("durable")) == 300  # and none twice
    finally:
        server.stop()


def test_sigterm_drains_and_exits_cleanly(fresh_server: KaonServer) -> None:
    server = fresh_server.start()
    with httpx.Client(base_url=server.url, headers=server.basic()) as client:
        for n in range(50):
            assert client.post("/v2/events", content=_batch(n)).status_code == 202
    assert server.terminate() == 0
    server.start()
    eventually(lambda: len(server.events_named("durable")) == 50, what="50 events after clean restart")
