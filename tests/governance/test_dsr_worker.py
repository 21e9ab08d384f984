"""OpenDSR status callbacks obey the outbound policy: a refused address is not contacted; the error says why."""

from pathlib import Path

import httpx
import pytest

from kaon.clock import now_ms
from kaon.governance.dsr_model import Submission
from kaon.governance.dsr_store import DsrStore
from kaon.governance.dsr_worker import DsrWorker
from kaon.store.db import Database, DatabaseUrl
from support.capture import VendorCapture


def queue_callback(tmp_path: Path, url: str, client: httpx.Client) -> tuple[Database, DsrWorker]:
    db = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}"))
    now = now_ms()
    DsrStore(db.conn()).create("ws_test", Submission(
        subject_request_id="b1b2c3d4-0000-4000-8000-000000000001", subject_request_type="access",
        regulation="gdpr", submitted_time=None, identities={"email": "a@example.org"}, status_callback_urls=[url],
        group_id=None, skip_waiting_period=False, api_version="3.0"), "http://kaon.test", now, now, now)
    return db, DsrWorker(db, tmp_path, client=client)


def last_error(db: Database) -> str:
    return str(db.conn().execute("SELECT last_error FROM dsr_callbacks").fetchone()[0])


def test_a_callback_to_a_refused_address_is_not_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capture: VendorCapture) -> None:
    monkeypatch.setenv("KAON_OUTBOUND_ALLOW", "")
    with httpx.Client() as client:
        db, worker = queue_callback(tmp_path, f"{capture.url}/cb", client)
        assert worker.send_callbacks() == 0
    assert capture.requests() == []
    assert "KAON_OUTBOUND_ALLOW" in last_error(db)


def test_a_callback_to_a_listed_address_is_sent(tmp_path: Path, capture: VendorCapture) -> None:
    with httpx.Client() as client:
        _, worker = queue_callback(tmp_path, f"{capture.url}/cb", client)
        assert worker.send_callbacks() == 1
    assert [r.route for r in capture.requests()] == ["/cb"]
