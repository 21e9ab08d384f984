"""Erasure: rejections (bodies and messages) and the ingest log, by whole identity values, in one workspace."""

from pathlib import Path

import pytest

from kaon.governance import dsr_erase, quarantine
from kaon.governance.dsr_erase import Subject, erase
from kaon.governance.dsr_scrub import scrub_files, scrub_log
from kaon.identity.merge import merge
from kaon.identity.store import ProfileStore
from kaon.log.base import LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.dedup import DedupStore
from kaon.store.events import EventStore, StoredEvent
from kaon.store.metrics import MetricsStore
from kaon.store.outputs import Output
from kaon.store.sql import Conn
from kaon.store.tx import transaction


def test_rejections_naming_the_person_in_their_message_are_erased(tmp_path: Path) -> None:
    conn = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'k.db'}")).conn()
    ws = ConfigStore(conn).create_workspace("w").id
    metrics = MetricsStore(conn)
    for code, message in (
        ("ALIAS_REFUSED_UNKNOWN_PREVIOUS", "previousId 'Alice-Anon' is held by no profile: nothing was joined"),
        ("ALIAS_REFUSED_SAME_PROFILE", "previousId 'x-1' is already on profile 4242 (userId 'u')"),
        ("ALIAS_REFUSED_SAME_PROFILE", "previousId 'x-2' is already on profile 42420 (userId 'v')"),
        ("INVALID_TIMESTAMP", "`timestamp` \"soon\" is not a readable time"),
    ):
        metrics.record_rejection(workspace_id=ws, input_id="in_1", received_ms=1, status=200, code=code,
                                 message=message, count=1, body=b"{}")
    subject = Subject(workspace_id=ws, mpids={4242}, identities={("device_application_stamp", "alice-anon")},
                      attribute_values=set(), event_ids=[])
    with transaction(conn):
        counts = erase(conn, subject)
    assert counts["rejections"] == 2
    left = [m for (m,) in conn.execute("SELECT message FROM rejections ORDER BY id")]
    assert left == ["previousId 'x-2' is already on profile 42420 (userId 'v')",
                    "`timestamp` \"soon\" is not a readable time"]


def _subject(ws: str) -> Subject:
    return Subject(workspace_id=ws, mpids=set(), identities={("email", "a@x.com")}, attribute_values=set(),
                   event_ids=[])


def test_erasure_matches_whole_values_and_stays_in_its_workspace(tmp_path: Path) -> None:
    conn = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'k.db'}")).conn()
    config = ConfigStore(conn)
    ws, other = config.create_workspace("w").id, config.create_workspace("other").id
    metrics = MetricsStore(conn)
    bodies = {(ws, b'{"user_identities":{"email":"a@x.com"}}'), (ws, b'{"user_identities":{"email":"aa@x.com"}}'),
              (ws, b'{"user_identities":{"email":"a@x.com.au"}}'), (other, b'{"user_identities":{"email":"a@x.com"}}')}
    for workspace, body in sorted(bodies):
        metrics.record_rejection(workspace_id=workspace, input_id="in_1", received_ms=1, status=400,
                                 code="INVALID_SHAPE", message="no", count=1, body=body)
    with transaction(conn):
        counts = erase(conn, _subject(ws))
    assert counts["rejections"] == 1
    left = {(w, bytes(b)) for w, b in conn.execute("SELECT workspace_id, body FROM rejections")}
    assert left == bodies - {(ws, b'{"user_identities":{"email":"a@x.com"}}')}


def test_log_scrub_matches_whole_values_and_stays_in_its_workspace(tmp_path: Path) -> None:
    writer = SqliteLogWriter(tmp_path / "log", "p0")
    bodies = [("w", '{"user_identities":{"email":"a@x.com"}}'), ("w", '{"user_identities":{"email":"A@X.COM"}}'),
              ("w", '{"user_identities":{"email":"aa@x.com"}}'), ("w", '{"user_identities":{"email":"a@x.co"}}'),
              ("other", '{"user_identities":{"email":"a@x.com"}}')]
    writer.append([LogEntry(kind="batch", workspace_id=w, input_id="i", received_ms=1, ip=None, body=b.encode())
                   for w, b in bodies])
    writer.close()
    assert scrub_log(tmp_path / "log", _subject("w")) == 2
    left = [(e.entry.workspace_id, e.entry.body.decode()) for e in SqliteLogReader(tmp_path / "log").read("p0", 0, 10)]
    assert left == [bodies[2], bodies[3], bodies[4]]


def test_files_scrub_touches_only_the_part_files_kaon_wrote(tmp_path: Path) -> None:
    row = '{"event_id": 7, "mpid": 1, "identities": {"email": "a@x.com"}}\n'
    part = tmp_path / "events" / "dt=2026-01-01" / "part-000000000007-000000000007.jsonl"
    strangers = [tmp_path / "notes.jsonl", tmp_path / "events" / "dt=2026-01-01" / "mine.jsonl",
                 tmp_path / "events" / ".editor.tmp", tmp_path / "events" / "dt=2026-01-01" / "part-1.jsonl"]
    for path in [part, *strangers]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(row)
    output = Output(id="o", workspace_id="w", name="lake", destination="files", settings={"directory": str(tmp_path)},
                    enabled=True, created_ms=1, updated_ms=1)
    assert scrub_files(output, _subject("w")) == 1
    assert not part.exists() and all(p.read_text() == row for p in strangers)


def _person_everywhere(conn: Conn) -> str:
    """A person with a merged tombstone, events in two batches, their message ids, a quarantined batch carrying one
    of their events (found only by its source message id), a rejection; and a stranger beside them."""
    ws = ConfigStore(conn).create_workspace("w").id
    store, events = ProfileStore(conn, ws), EventStore(conn)
    with transaction(conn):
        survivor, tombstone, stranger = store.create(1), store.create(2), store.create(3)
        store.link(survivor, ("email", "a@x.com"), 1)
        store.link(stranger, ("email", "s@x.com"), 1)
        store.set_attribute(tombstone, "plan", "gold", 1)
        batches = [events.insert_batch(ws, "in", 1, b"{}") for _ in range(3)]
        for n, (mpid, batch) in enumerate(((tombstone, batches[0]), (survivor, batches[1]), (stranger, batches[2]))):
            events.insert_events([StoredEvent(workspace_id=ws, input_id="in", batch_id=batch, mpid=mpid,
                                              event_type="custom_event", event_name="e", source_message_id=f"m-{n}",
                                              timestamp_ms=1, received_ms=1, environment="production", body=b"{}")])
            DedupStore(conn, 1_000).first_sighting(ws, f"m-{n}", 1)
        merge(conn, ws, survivor, tombstone, reason="test", actor="test", now_ms=2)
        quarantine.add(conn, workspace_id=ws, input_id="in", plan_id="p", plan_version=1, received_ms=1, now=1,
                       reasons=[], blocked_events=[], batch=b'{"events": [{"data": {"source_message_id": "m-0"}}]}')
        quarantine.add(conn, workspace_id=ws, input_id="in", plan_id="p", plan_version=1, received_ms=1, now=1,
                       reasons=[], blocked_events=[], batch=b'{"events": [{"data": {"source_message_id": "m-2"}}]}')
        MetricsStore(conn).record_rejection(workspace_id=ws, input_id="in", received_ms=1, status=400, code="X",
                                            message="no", count=1, body=b'{"email": "a@x.com"}')
    return ws


_EVERY_ROW = {"batches": 1, "events": 1, "message_ids": 1, "profiles": 1, "identities": 1, "quarantine": 1,
              "rejections": 0, "merges": 0, "profile_attributes": 0}


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_owners_erase_the_person_in_any_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str) -> None:
    conn = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'k.db'}")).conn()
    ws = _person_everywhere(conn)
    if order == "reversed":
        monkeypatch.setattr(dsr_erase, "ERASERS", tuple(reversed(dsr_erase.ERASERS)))
    with transaction(conn):
        counts = erase(conn, dsr_erase.find_subject(conn, ws, {"email": "a@x.com"}))
    assert counts == {"batches": 2, "events": 2, "message_ids": 2, "profiles": 2, "identities": 1, "quarantine": 1,
                      "rejections": 1, "merges": 1, "profile_attributes": 1}
    left = {table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) for table in _EVERY_ROW}
    assert left == _EVERY_ROW  # the stranger's
