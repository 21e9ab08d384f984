"""The consent history's owner: a data subject's records exported and erased, nobody else's touched."""

from pathlib import Path
from typing import Any

from kaon.governance.consent_store import ConsentHistory, Source, erase_subject, export_subject
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sql import Conn
from kaon.store.subject import Subject

WS, OTHER = "ws_1", "ws_2"
ALICE, ALICE_MERGED, BOB = 11, 12, 21


def _record(consented: bool, at: int, **extra: Any) -> dict[str, Any]:
    return {"consented": consented, "timestamp_unixtime_ms": at, "document": "v1", **extra}


def _world(tmp_path: Path) -> Conn:
    conn = Database(DatabaseUrl.parse("sqlite:///" + str(tmp_path / "kaon.db"))).conn()
    source = Source(received_ms=100, input_id="in_1")
    for ws in (WS, OTHER):
        history = ConsentHistory(conn, ws)
        history.append(ALICE, "gdpr", "marketing", _record(True, 3_000, location="home"), source)
        history.append(ALICE_MERGED, "gdpr", "marketing", _record(False, 1_000), source)
        history.append(BOB, "gdpr", "marketing", _record(True, 2_000), source)
    return conn


def _alice() -> Subject:
    return Subject(workspace_id=WS, mpids={ALICE, ALICE_MERGED}, identities={("email", "alice@x.com")},
                   attribute_values=set(), event_ids=[])


def _held(conn: Conn) -> set[tuple[str, int]]:
    return {(str(w), int(m)) for w, m in conn.execute("SELECT workspace_id, mpid FROM consent_history")}


def test_export_subject_lists_the_persons_records_oldest_first(tmp_path: Path) -> None:
    conn = _world(tmp_path)
    assert export_subject(conn, _alice()) == [
        {"mpid": str(ALICE_MERGED), "regulation": "gdpr", "purpose": "marketing", "consented": False,
         "document": "v1", "timestamp_ms": 1_000, "location": None, "hardware_id": None, "received_ms": 100},
        {"mpid": str(ALICE), "regulation": "gdpr", "purpose": "marketing", "consented": True,
         "document": "v1", "timestamp_ms": 3_000, "location": "home", "hardware_id": None, "received_ms": 100}]
    assert export_subject(conn, Subject(workspace_id=WS, mpids=set(), identities=set(), attribute_values=set(),
                                        event_ids=[])) == []


def test_erase_subject_deletes_the_persons_records_only(tmp_path: Path) -> None:
    conn = _world(tmp_path)
    before = _held(conn)
    assert erase_subject(conn, _alice()) == {"consent_history": 2}
    assert _held(conn) == before - {(WS, ALICE), (WS, ALICE_MERGED)}
    assert [h["mpid"] for h in ConsentHistory(conn, WS).history([BOB])] == [str(BOB)]
    assert erase_subject(conn, _alice()) == {"consent_history": 0}


def test_history_pages_and_batches_are_named(tmp_path: Path) -> None:
    conn = _world(tmp_path)
    history = ConsentHistory(conn, WS)
    first, *rest = history.history([ALICE, ALICE_MERGED, BOB], limit=1)
    assert first["mpid"] == str(ALICE) and rest == []
    after = (first["timestamp_unixtime_ms"], first["received_ms"], first["id"])
    assert [h["mpid"] for h in history.history([ALICE, ALICE_MERGED, BOB], after=after)] == [str(BOB),
                                                                                          str(ALICE_MERGED)]
    history.set_batch([first["id"]], 77)
    assert [h["batch_id"] for h in history.history([ALICE])] == [77]
    assert ConsentHistory(conn, OTHER).history([ALICE])[0]["batch_id"] is None
