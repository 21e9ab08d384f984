"""An erased person is removed from the lists audience connections put them in, through each output's own module,
and the data subject request says what each output was sent; nothing of the person is kept afterwards."""

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from kaon.activation import erasure, service
from kaon.clock import now_ms
from kaon.governance.dsr_model import Submission
from kaon.governance.dsr_store import DsrRow, DsrStore
from kaon.governance.dsr_worker import DsrWorker
from kaon.store.outputs import Output, OutputStore
from kaon.store.subject import Subject, SyncedMember
from support.activation import an_audience, deliver, purchase
from support.capture import VendorCapture
from support.pipeline import NOW, Pipeline

REQUEST_ID = "b1b2c3d4-0000-4000-8000-00000000e001"


def outputs(p: Pipeline, vendor: VendorCapture, meta: VendorCapture) -> tuple[str, str]:
    store = OutputStore(p.db.conn(), p.workspace_id)
    hook = store.create_output("hook", "audience_webhook", {"base_url": f"{vendor.url}/hook"}, True).id
    ads = store.create_output("meta", "meta_custom_audiences", {"audience_id": "2385", "access_token": "tok",
                                                                "base_url": meta.url}, True).id
    return hook, ads


def submit(p: Pipeline, **identities: str) -> None:
    now = now_ms()
    DsrStore(p.db.conn()).create(p.workspace_id, Submission(
        subject_request_id=REQUEST_ID, subject_request_type="erasure", regulation="gdpr", submitted_time=None,
        identities=identities, status_callback_urls=[], group_id=None, skip_waiting_period=True,
        api_version="3.0"), "http://kaon.test", now, now, now)


def erase(p: Pipeline, tmp_path: Path, **identities: str) -> DsrRow:
    """Submit an erasure (no waiting period) unless one is under way, run the DSR worker; the request as it ends."""
    store = DsrStore(p.db.conn())
    if identities:
        submit(p, **identities)
    with httpx.Client() as client:
        worker = DsrWorker(p.db, tmp_path, client=client)
        try:
            assert worker.run_once() == 1
        finally:
            worker.conn.close()
    done = store.get(REQUEST_ID)
    assert done is not None
    return done


def test_an_erased_member_is_removed_from_every_synced_list(pipeline: Pipeline, tmp_path: Path) -> None:
    vendor, meta = VendorCapture().start(), VendorCapture().start()
    try:
        buyers = an_audience(pipeline)
        pipeline.bulk(purchase(NOW, customer_id="gone", email="Gone@Example.com"),
                      purchase(NOW, customer_id="kept", email="kept@example.com"))
        pipeline.process(now=NOW)
        gone = pipeline.holder("customer_id", "gone")
        hook, ads = outputs(pipeline, vendor, meta)
        for output in (hook, ads):
            service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
            deliver(pipeline, output)
        assert len(vendor.requests()) == 1 and len(meta.requests()) == 1  # the initial syncs: both members
        vendor.clear()
        meta.clear()

        done = erase(pipeline, tmp_path, email="gone@example.com")

        assert done.status == "completed"
        (webhook_call,) = vendor.requests()
        (profile,) = webhook_call.json()["user_profiles"]
        assert profile["mpid"] == str(gone) and profile["audiences"][0]["action"] == "delete"
        assert {i["value"] for i in profile["user_identities"]} == {"gone", "gone@example.com"}
        (meta_call,) = meta.requests()
        assert meta_call.method == "DELETE" and meta_call.route.endswith("/2385/users")
        rows = meta_call.json()["payload"]["data"]
        assert hashlib.sha256(b"gone@example.com").hexdigest() in rows[0]
        entries = {e["output_id"]: e for e in done.extensions}
        assert entries[hook]["status"] == entries[ads]["status"] == "sent"
        assert entries[ads]["audiences"] == [buyers]
        # Nothing of the person is left: not what was synced, not the saved progress.
        assert pipeline.rows("SELECT count(*) FROM audience_synced WHERE mpid = ?", gone) == [(0,)]
        assert pipeline.rows("SELECT count(*) FROM delivery_jobs WHERE mpid = ?", gone) == [(0,)]
        assert "gone" not in f"{done.extensions} {done.summary}".lower()
    finally:
        vendor.stop()
        meta.stop()


def test_a_crash_after_the_erasure_still_sends_the_removals(pipeline: Pipeline, tmp_path: Path,
                                                             vendor: VendorCapture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="gone"))
    pipeline.process(now=NOW)
    hook = OutputStore(pipeline.db.conn(), pipeline.workspace_id).create_output(
        "hook", "audience_webhook", {"base_url": f"{vendor.url}/hook"}, True).id
    service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, hook, {}, NOW)
    deliver(pipeline, hook)
    vendor.clear()
    submit(pipeline, customer_id="gone")

    def crash(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise RuntimeError("the worker died here")

    with monkeypatch.context() as patched:
        patched.setattr(erasure, "remove", crash)
        with pytest.raises(RuntimeError):
            erase(pipeline, tmp_path)
    # The store is erased already: what was synced is known only from the request's saved progress.
    assert pipeline.rows("SELECT count(*) FROM audience_synced") == [(0,)]
    assert vendor.requests() == []
    done = erase(pipeline, tmp_path)
    assert done.status == "completed" and [e["status"] for e in done.extensions] == ["sent"]
    (call,) = vendor.requests()
    assert call.json()["user_profiles"][0]["audiences"][0]["action"] == "delete"


def subject_synced_to(output_id: str) -> Subject:
    member = SyncedMember(connection_id="acn_1", output_id=output_id, audience_id="aud_1", audience_name="Buyers",
                          mpid=7, identities={"customer": "c-7", "email": "seven@example.com"})
    return Subject(workspace_id="ws", mpids={7}, identities={("email", "seven@example.com")}, attribute_values=set(),
                   event_ids=[], synced=[member])


def an_output(destination: str, settings: dict[str, Any], enabled: bool = True) -> Output:
    return Output(id="out_1", workspace_id="ws", name="o", destination=destination, settings=settings,
                  enabled=enabled, created_ms=0, updated_ms=0)


def test_a_vendor_that_keeps_failing_is_reported_without_the_identifiers(capture: VendorCapture) -> None:
    capture.answer_next(erasure.ATTEMPTS, 503, body={"error": "seven@example.com is busy"})
    output = an_output("audience_webhook", {"base_url": f"{capture.url}/hook"})
    with httpx.Client() as client:
        (entry,) = erasure.remove(subject_synced_to("out_1"), [output], client, NOW, sleep=lambda s: None)
    assert entry["status"] == "failed" and "3 attempts" in entry["status_message"]
    assert "seven@example.com" not in entry["status_message"]
    assert len(capture.requests()) == erasure.ATTEMPTS


def test_a_refusal_is_not_retried(capture: VendorCapture) -> None:
    capture.answer_next(1, 401, body=b"bad signature")
    with httpx.Client() as client:
        (entry,) = erasure.remove(subject_synced_to("out_1"), [an_output(
            "audience_webhook", {"base_url": f"{capture.url}/hook"})], client, NOW, sleep=lambda s: None)
    assert entry["status"] == "failed" and len(capture.requests()) == 1


def test_disabled_covered_and_deleted_outputs_get_no_removal(capture: VendorCapture) -> None:
    hook = {"base_url": f"{capture.url}/hook"}
    with httpx.Client() as client:
        disabled = erasure.remove(subject_synced_to("out_1"), [an_output("audience_webhook", hook, enabled=False)],
                                  client, NOW)
        covered = erasure.remove(subject_synced_to("out_1"), [an_output("braze", {"api_key": "k"})], client, NOW)
        deleted = erasure.remove(subject_synced_to("out_gone"), [an_output("audience_webhook", hook)], client, NOW)
    assert [e["status"] for e in disabled] == ["skipped"]
    assert covered == [] and deleted == []  # Braze gets the person's deletion (dsr_forward); the other is gone
    assert capture.requests() == []
