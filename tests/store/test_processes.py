"""Every `kaon serve` registers and beats; `kaon status` lists them as running, lost or stopped."""

import json
from pathlib import Path

import pytest

from kaon.cli import main
from kaon.clock import now_ms
from kaon.store import processes
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore

T0 = 1_800_000_000_000


def test_processes_are_running_then_lost_without_a_beat_and_stopped_when_they_say_so(database: Database) -> None:
    conn = database.conn()
    first = processes.register(conn, "all", "127.0.0.1:8080", T0)
    second = processes.register(conn, "all", "127.0.0.1:8081", T0)
    processes.beat(conn, first, T0 + processes.STALE_MS)
    processes.stopped(conn, second, T0 + 1000)
    states = {p["id"]: p["state"] for p in processes.listing(conn, T0 + processes.STALE_MS + 1)}
    assert states == {first: "running", second: "stopped"}
    states = {p["id"]: p["state"] for p in processes.listing(conn, T0 + 2 * processes.STALE_MS + 1)}
    assert states[first] == "lost"
    assert processes.forget_before(conn, T0 + 2000) == 1  # the stopped one, last seen at T0 + 1 s
    assert [p["id"] for p in processes.listing(conn, T0 + processes.STALE_MS)] == [first]


def test_kaon_status_lists_processes_and_offsets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["init", "--data-dir", str(data), "--json"]) == 0
    capsys.readouterr()
    db = Database(DatabaseUrl.parse(f"sqlite:///{data / 'kaon.db'}"))
    process_id = processes.register(db.conn(), "all", "127.0.0.1:9", now_ms())
    OffsetStore(db.conn()).set("0", 42)
    db.close()
    assert main(["status", "--data-dir", str(data), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [(p["id"], p["state"]) for p in found["processes"]] == [(process_id, "running")]
    assert found["partitions"] == [{"partition": "0", "processed_up_to": 42}]
