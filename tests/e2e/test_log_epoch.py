"""Replacing the ingest log (a deleted or restored partition file) never makes new events acked-then-dropped."""

import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from kaon.log.base import LogEntry
from kaon.log.sqlite import SqliteLogWriter
from support.server import KaonServer, kaon
from support.waiting import eventually


def send(server: KaonServer, name: str) -> None:
    body = {"environment": "production", "user_identities": {"customer_id": f"c-{name}"},
            "events": [{"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other"}}]}
    answer = httpx.post(f"{server.url}/v2/events", content=json.dumps(body), headers=server.basic(), timeout=30)
    assert answer.status_code == 202, answer.text


def stored(server: KaonServer, *names: str) -> bool:
    return set(names) <= {e["event_name"] for e in server.events()}


def remove_log(data_dir: Path) -> list[Path]:
    files = [p for p in (data_dir / "log").iterdir() if p.name.startswith("ingest-")]
    assert files, "the log partition files exist"
    for path in files:
        path.unlink()
    return files


def send_and_wait(server: KaonServer, names: list[str]) -> None:
    """One event per name, then wait until every one is stored."""
    for name in names:
        send(server, name)
    eventually(lambda: stored(server, *names), timeout=30, what="the first events stored")


def test_a_deleted_log_starts_a_new_epoch_and_every_new_event_is_processed(tmp_path: Path) -> None:
    server = KaonServer(tmp_path).start()
    try:
        tag = uuid.uuid4().hex[:6]
        before = [f"before-{tag}-{i}" for i in range(5)]
        send_and_wait(server, before)
        server.stop()
        remove_log(tmp_path)
        server.start()
        after = [f"after-{tag}-{i}" for i in range(3)]
        for name in after:
            send(server, name)
        eventually(lambda: stored(server, *after), timeout=30, what="every event sent after the log was replaced")
        assert "new epoch" in server.log_path.read_text()
    finally:
        server.stop()


def test_a_replaced_log_holding_entries_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    server = KaonServer(tmp_path).start()
    try:
        send_and_wait(server, [f"first-{i}" for i in range(3)])
    finally:
        server.stop()
    partition = remove_log(tmp_path)[0].name.split(".db")[0]
    stray = sqlite3.connect(tmp_path / "log" / f"{partition}.db")
    stray.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
                  " workspace_id TEXT, input_id TEXT, received_ms INTEGER NOT NULL, ip TEXT, body BLOB NOT NULL)")
    stray.execute("INSERT INTO entries (kind, received_ms, body) VALUES ('batch', 1, x'7b7d')")
    stray.commit()
    stray.close()
    done = subprocess.run([sys.executable, "-m", "kaon", "serve", "--data-dir", str(tmp_path),
                           "--port", str(server.port)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "the log file was replaced" in done.stderr and "Kaon will not start" in done.stderr, done.stderr
    assert "kaon log accept-epoch" in done.stderr


def test_the_operator_accepts_a_replaced_log_and_its_entries_are_processed(tmp_path: Path) -> None:
    server = KaonServer(tmp_path).start()
    try:
        send_and_wait(server, [f"first-{i}" for i in range(3)])
        server.stop()
        # A log restored from elsewhere: entries numbered from 1 again, never processed here.
        restored = tmp_path / "restored"
        writer = SqliteLogWriter(restored, "0")
        body = {"environment": "production", "user_identities": {"customer_id": "c-restored"},
                "events": [{"event_type": "custom_event", "data": {"event_name": "restored",
                                                                   "custom_event_type": "other"}}]}
        writer.append([LogEntry(kind="mparticle_batch", workspace_id=server.init["workspace_id"],
                                input_id=server.input("server")["id"], received_ms=1, ip=None,
                                body=json.dumps(body).encode())])
        writer.close()
        remove_log(tmp_path)
        for path in restored.iterdir():
            path.rename(tmp_path / "log" / path.name)
        accepted = kaon("log", "accept-epoch", data_dir=tmp_path)
        assert accepted.returncode == 0, accepted.stderr
        assert json.loads(accepted.stdout)["entries_renumbered"] == 1
        server.start()
        send(server, "after-accept")
        eventually(lambda: stored(server, "restored", "after-accept"), timeout=30,
                   what="the restored entry and a new one processed")
    finally:
        server.stop()
