"""The DSR tables' owner: an erasure's saved progress, other requests for the same person, callbacks and
suppressed digests."""

from pathlib import Path

from kaon.governance import dsr_store
from kaon.governance.dsr_model import Submission
from kaon.governance.dsr_store import DsrRow, DsrStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.sql import Conn

WS = "ws_1"


def _conn(tmp_path: Path) -> Conn:
    return Database(DatabaseUrl.parse("sqlite:///" + str(tmp_path / "kaon.db"))).conn()


def _request(store: DsrStore, n: int, kind: str, email: str, ws: str = WS,
             callbacks: list[str] | None = None) -> DsrRow:
    return store.create(ws, Submission(
        subject_request_id=f"b1b2c3d4-0000-4000-8000-00000000000{n}", subject_request_type=kind, regulation="gdpr",
        submitted_time=None, identities={"email": email}, status_callback_urls=callbacks or [], group_id=None,
        skip_waiting_period=False, api_version="3.0"), "http://kaon.test", 1, 1, 1)


def test_progress_is_saved_replaced_and_cleared(tmp_path: Path) -> None:
    store = DsrStore(_conn(tmp_path))
    assert store.progress("r1") is None
    store.save_progress("r1", b'{"mpids": [1]}', {"store": {"events": 1}})
    store.save_progress("r1", b'{"mpids": [2]}', {"store": {"events": 2}})
    assert store.progress("r1") == (b'{"mpids": [2]}', {"store": {"events": 2}})
    store.clear_progress("r1")
    assert store.progress("r1") is None


def test_other_requests_for_the_same_person_are_found_by_digest(tmp_path: Path) -> None:
    store = DsrStore(_conn(tmp_path))
    access = _request(store, 1, "access", "a@x.com")
    _request(store, 2, "access", "b@x.com")
    _request(store, 3, "portability", "a@x.com", ws="ws_2")
    earlier_erasure = _request(store, 4, "erasure", "a@x.com")
    store.set_status(earlier_erasure, "completed", 2)
    erasure = _request(store, 5, "erasure", "a@x.com")
    assert store.others_with_digests(erasure) == [access.id]


def test_callbacks_due_sent_and_retried(tmp_path: Path) -> None:
    store = DsrStore(_conn(tmp_path))
    _request(store, 1, "access", "a@x.com", callbacks=["http://cb.test/a", "http://cb.test/b"])
    (first, url, body, attempts), second = store.callbacks_due(1, 8)
    assert (url, attempts) == ("http://cb.test/a", 0) and b'"request_status":"pending"' in body
    store.callback_sent(first, 1, 5, 200)
    store.callback_failed(second[0], 1, 100, 503, "busy")
    assert store.callbacks_due(99, 8) == []
    assert store.callbacks_due(100, 8) == [(second[0], "http://cb.test/b", second[2], 1)]
    assert store.callbacks_due(100, 1) == []


def test_a_suppression_keeps_its_longest_end(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    assert not dsr_store.any_suppressed(conn, WS, 0)
    dsr_store.suppress_digest(conn, WS, "d1", "email", "r1", 10, 1_000)
    dsr_store.suppress_digest(conn, WS, "d1", "email", "r2", 20, 500)
    dsr_store.suppress_digest(conn, WS, "d2", "customer_id", "r2", 20, 600)
    assert dsr_store.any_suppressed(conn, WS, 0) and not dsr_store.any_suppressed(conn, "ws_2", 0)
    assert dsr_store.suppressions(conn, WS, 550) == [("email", "r2", 10, 1_000), ("customer_id", "r2", 20, 600)]
    assert dsr_store.is_digest_suppressed(conn, WS, "d1", 999)
    assert not dsr_store.is_digest_suppressed(conn, WS, "d1", 1_000)
    assert not dsr_store.is_digest_suppressed(conn, WS, "d2", 600)
