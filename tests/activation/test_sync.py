"""Audience connections through the real process stage and delivery worker, on SQLite and PostgreSQL.

An audience output gets the current members (initial sync, in resumable pages), then each entry and exit as an
add or a remove, in order; disconnecting or deleting the audience removes what was sent; consent rules keep
members out; a trigger connection sends each change as an `audience_membership_change` event; erasure forgets
what was synced.
"""

import threading
from pathlib import Path
from typing import Any

import pytest

from kaon.activation import service, sync
from kaon.activation.store import ConnectionStore, SyncedStore
from kaon.audiences import service as audiences
from kaon.audiences.schedule import run_due_changes
from kaon.audiences.store import Change, MemberStore
from kaon.delivery.worker import OutputWorker
from kaon.destinations.registry import destination
from kaon.errors import Conflict, NotFound
from kaon.governance.dsr_erase import erase, find_subject
from kaon.identity import idsync
from kaon.identity.service import Identity as IdentityService
from kaon.store.db import Database, DatabaseUrl
from kaon.store.outputs import OutputStore
from kaon.store.tx import transaction
from support.activation import QUICK, an_audience, an_output, deliver, purchase
from support.capture import VendorCapture
from support.pipeline import DAY, NOW, Pipeline
from support.waiting import eventually


def deliver_until(p: Pipeline, output_id: str, vendor: VendorCapture, requests: int, what: str) -> None:
    """Run the output's delivery worker (quick retries) until the vendor has had `requests` requests."""
    row = OutputStore(p.db.conn(), p.workspace_id).output(output_id)
    found = destination(row.destination)
    worker = OutputWorker(p.db, output_id, found, found.parse_settings(row.settings), QUICK)
    try:
        eventually(lambda: worker.run_once() >= 0 and len(vendor.requests()) >= requests, timeout=10, what=what)
    finally:
        worker.stop_event.set()
        worker.start()
        worker.stop()


def sent(vendor: VendorCapture) -> list[tuple[str, str, dict[str, str]]]:
    """(mpid, action, identities by type) of every membership change the webhook received, in order."""
    out = []
    for request in vendor.requests():
        for profile in request.json()["user_profiles"]:
            (aud,) = profile["audiences"]
            out.append((profile["mpid"], aud["action"], {i["type"]: i["value"] for i in profile["user_identities"]}))
    return out


def tick(p: Pipeline, at: int) -> None:
    with transaction(p.db.conn()) as conn:
        run_due_changes(conn, at)


def test_initial_sync_then_every_entry_and_exit_in_order(pipeline: Pipeline, vendor: VendorCapture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(*(purchase(NOW - DAY, customer_id=f"c{n}", email=f"u{n}@example.com") for n in range(5)))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    monkeypatch.setattr(sync, "MEMBERS_PER_STEP", 2)  # three pages: the sync resumes from its cursor each step
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
    assert row.mode == "sync" and row.status == "syncing"
    deliver(pipeline, output)
    initial = sent(vendor)
    assert len(initial) == 5 and {a for _, a, _ in initial} == {"add"}
    assert {i["customer"] for _, _, i in initial} == {f"c{n}" for n in range(5)}
    done = ConnectionStore(pipeline.db.conn(), pipeline.workspace_id).get(row.id)
    assert done.status == "live" and done.progress["members_sent"] == 5
    assert SyncedStore(pipeline.db.conn(), pipeline.workspace_id).count(row.id) == 5
    # A new buyer enters and, a week later, the first buyers leave: an add, then removals naming what was added.
    pipeline.bulk(purchase(NOW + 1000, customer_id="late", email="late@example.com"))
    pipeline.process(now=NOW + 1000)
    late = str(pipeline.holder("customer_id", "late"))
    tick(pipeline, NOW + 6 * DAY + 2000)  # the first five purchases (NOW - DAY) roll out of the 7 days
    deliver(pipeline, output)
    after = sent(vendor)[5:]
    assert after[0] == (late, "add", {"customer": "late", "email": "late@example.com"})
    assert sorted(i["customer"] for _, a, i in after[1:] if a == "delete") == [f"c{n}" for n in range(5)]
    tick(pipeline, NOW + 8 * DAY)
    deliver(pipeline, output)
    assert sent(vendor)[-1] == (late, "delete", {"customer": "late", "email": "late@example.com"})
    assert SyncedStore(pipeline.db.conn(), pipeline.workspace_id).count(row.id) == 0


def test_an_exit_never_overtakes_its_entry_when_the_entry_is_retried(pipeline: Pipeline,
                                                                     vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    output = OutputStore(pipeline.db.conn(), pipeline.workspace_id).create_output(
        "Meta", "meta_custom_audiences", {"audience_id": "1", "access_token": "t", "base_url": vendor.url}, True).id
    service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
    pipeline.bulk(purchase(NOW, customer_id="a"))
    pipeline.process(now=NOW)
    tick(pipeline, NOW + 8 * DAY)  # a week later the member leaves
    sync.run_all(pipeline.db.conn())  # the add and the remove are both queued before anything is sent
    vendor.answer_next(1, 503, body={"error": "busy"})  # the add fails once: the remove must wait for it
    deliver_until(pipeline, output, vendor, 3, "the add twice, then the remove")
    assert [r.method for r in vendor.requests()] == ["POST", "POST", "DELETE"]


def test_a_merged_members_removal_is_sent_before_the_survivors_add_even_when_retried(
        pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    output = OutputStore(pipeline.db.conn(), pipeline.workspace_id).create_output(
        "Meta", "meta_custom_audiences", {"audience_id": "1", "access_token": "t", "base_url": vendor.url}, True).id
    pipeline.bulk(purchase(NOW, customer_id="x"), purchase(NOW, email="y@example.com"))
    pipeline.process(now=NOW)
    service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
    deliver(pipeline, output)
    vendor.clear()
    # One person after all: the profiles merge. The merged one's removal names an e-mail the survivor now holds.
    pipeline.bulk(purchase(NOW + 1000, customer_id="x", email="y@example.com"))
    pipeline.process(now=NOW + 1000)
    assert pipeline.merges()
    sync.run_all(pipeline.db.conn())  # the removal and the survivor's add are both queued before anything is sent
    vendor.answer_next(1, 503, body={"error": "busy"})  # the removal fails once: the add must wait for it
    deliver_until(pipeline, output, vendor, 3, "the removal twice, then the add")
    assert [r.method for r in vendor.requests()] == ["DELETE", "DELETE", "POST"]


def test_disconnecting_removes_every_member_that_was_sent(pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="a"), purchase(NOW, customer_id="b"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
    deliver(pipeline, output)
    gone = service.disconnect(pipeline.db.conn(), pipeline.workspace_id, buyers, row.id, NOW)
    assert gone.status == "disconnecting"
    deliver(pipeline, output)
    assert sorted((i["customer"], a) for _, a, i in sent(vendor)) == [("a", "add"), ("a", "delete"),
                                                                       ("b", "add"), ("b", "delete")]
    assert ConnectionStore(pipeline.db.conn(), pipeline.workspace_id).find(row.id) is None
    assert pipeline.rows("SELECT count(*) FROM audience_synced") == [(0,)]


def test_deleting_the_audience_removes_what_was_sent(pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="a"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
    deliver(pipeline, output)
    audiences.delete_audience(pipeline.db.conn(), pipeline.workspace_id, buyers, NOW)
    deliver(pipeline, output)
    assert [(i["customer"], a) for _, a, i in sent(vendor)] == [("a", "add"), ("a", "delete")]
    assert ConnectionStore(pipeline.db.conn(), pipeline.workspace_id).find(row.id) is None


def test_a_consent_rule_keeps_members_without_consent_out(pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    consented = {**purchase(NOW, customer_id="yes"), "consent_state": {"gdpr": {"marketing": {
        "consented": True, "timestamp_unixtime_ms": NOW, "document": "v1"}}}}
    pipeline.bulk(consented, purchase(NOW, customer_id="no"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output,
                          {"rules": {"consent": {"gdpr_purposes": ["marketing"]}}, "identity_types": ["customer_id"]},
                          NOW)
    deliver(pipeline, output)
    assert [(i, a) for _, a, i in sent(vendor)] == [({"customer": "yes"}, "add")]
    filtered = pipeline.rows("SELECT reason, count FROM output_stats WHERE connection_id = ? AND metric = 'filtered'",
                             row.id)
    assert filtered == [("consent:gdpr:marketing", 1)]


def test_a_member_whose_identity_changed_is_removed_by_the_old_one_and_added_by_the_new(
        pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline, definition={"event": {"event_type": "commerce_event", "name": "purchase",
                                                         "within": "1d"}})
    pipeline.bulk(purchase(NOW, customer_id="c", email="old@example.com"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {"identity_types": ["email"]}, NOW)
    deliver(pipeline, output)
    tick(pipeline, NOW + DAY + 1)  # leaves, then comes back with a new e-mail
    swap = {"timestamp_unixtime_ms": NOW + 2 * DAY, "old": {"identity_type": "email", "identity": "old@example.com"},
            "new": {"identity_type": "email", "identity": "new@example.com"}}
    pipeline.bulk({**purchase(NOW + 2 * DAY, customer_id="c"), "events": [
        {"event_type": "user_identity_change", "data": swap}, *purchase(NOW + 2 * DAY)["events"]]})
    pipeline.process(now=NOW + 2 * DAY)
    deliver(pipeline, output)
    assert [(a, i) for _, a, i in sent(vendor)] == [("add", {"email": "old@example.com"}),
                                                    ("delete", {"email": "old@example.com"}),
                                                    ("add", {"email": "new@example.com"})]


def test_a_member_whose_identity_changes_is_updated_at_the_output(pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="c", email="old@example.com"), purchase(NOW, customer_id="other"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output,
                          {"identity_types": ["email", "customer_id"]}, NOW)
    deliver(pipeline, output)
    swap = {"timestamp_unixtime_ms": NOW + 1000, "old": {"identity_type": "email", "identity": "old@example.com"},
            "new": {"identity_type": "email", "identity": "new@example.com"}}
    pipeline.bulk({"environment": "production", "user_identities": {"customer_id": "c"},
                   "events": [{"event_type": "user_identity_change", "data": swap}]})
    pipeline.process(now=NOW + 1000)
    deliver(pipeline, output)
    mine = [(a, i) for _, a, i in sent(vendor) if i.get("customer") != "other"]
    assert mine == [("add", {"customer": "c", "email": "old@example.com"}), ("delete", {"email": "old@example.com"}),
                    ("add", {"customer": "c", "email": "new@example.com"})]
    synced = SyncedStore(pipeline.db.conn(), pipeline.workspace_id).of(row.id, [pipeline.holder("customer_id", "c")])
    assert list(synced.values()) == [{"customer_id": "c", "email": "new@example.com"}]
    assert pipeline.rows("SELECT count(*) FROM audience_identity_updates") == [(0,)], "read by every connection"


def test_a_member_without_an_identity_the_output_takes_is_added_once_it_has_one(
        pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="c"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {"identity_types": ["email"]}, NOW)
    deliver(pipeline, output)
    assert sent(vendor) == [] and SyncedStore(pipeline.db.conn(), pipeline.workspace_id).count(row.id) == 0
    pipeline.bulk({"environment": "production", "user_identities": {"customer_id": "c", "email": "c@example.com"},
                   "events": []})
    pipeline.process(now=NOW + 1000)
    deliver(pipeline, output)
    assert [(a, i) for _, a, i in sent(vendor)] == [("add", {"email": "c@example.com"})]


def test_an_idsync_modify_of_a_member_is_sent_too(pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="c", email="old@example.com"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {"identity_types": ["email"]}, NOW)
    deliver(pipeline, output)
    request = idsync.ModifyRequest(identity_changes=[idsync.IdentityChange(
        identity_type="email", old_value="old@example.com", new_value="new@example.com")])
    with transaction(pipeline.db.conn()) as conn:
        identity = IdentityService(conn, pipeline.workspace_id, actor="test", now_ms=NOW + 1000)
        assert idsync.modify(identity, pipeline.holder("customer_id", "c"), request) is not None
    deliver(pipeline, output)
    assert [(a, i) for _, a, i in sent(vendor)] == [("add", {"email": "old@example.com"}),
                                                    ("delete", {"email": "old@example.com"}),
                                                    ("add", {"email": "new@example.com"})]


def test_a_trigger_connection_sends_each_change_as_an_event(pipeline: Pipeline, vendor: VendorCapture) -> None:
    count = {"data_point": {"event_type": "commerce_event", "event_name": "purchase"}, "calculation_type": "count",
             "time_period": {"type": "all"}}
    made = audiences.create_calculated(pipeline.db.conn(), pipeline.workspace_id,
                                       {"name": "purchases", "draft_definition": count}, "test", NOW)
    audiences.activate_calculated(pipeline.db.conn(), pipeline.workspace_id, made.id, "test", NOW)
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW - DAY, customer_id="before"))  # a member before the connection: no trigger for it
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor, "webhook")
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
    assert row.mode == "trigger" and row.status == "live"
    pipeline.bulk({**purchase(NOW, customer_id="now", email="now@example.com"), "user_attributes": {"plan": "pro"}})
    pipeline.process(now=NOW)
    deliver(pipeline, output)
    (request,) = vendor.requests()
    body = request.json()
    assert body["event_type"] == "custom_event" and body["data"]["event_name"] == "audience_membership_change"
    assert body["data"]["custom_attributes"] == {"audience_id": buyers, "audience_name": "Buyers", "action": "add",
                                                 "cause": "event"}
    assert body["user_identities"] == {"customer_id": "now", "email": "now@example.com"}
    assert body["user_attributes"] == {"plan": "pro", "purchases": "1"}, "calculated attributes ride along"
    assert body["mpid"] == str(pipeline.holder("customer_id", "now"))


def test_a_connection_gives_the_output_its_own_settings(pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="c1"), purchase(NOW, email="only@example.com"))
    pipeline.process(now=NOW)
    output = OutputStore(pipeline.db.conn(), pipeline.workspace_id).create_output(
        "Customer.io", "customerio", {"site_id": "s", "api_key": "k", "base_url": vendor.url}, True).id
    conn, ws = pipeline.db.conn(), pipeline.workspace_id
    with pytest.raises(service.SettingsError, match="segment_id"):
        service.connect(conn, ws, buyers, output, {}, NOW)
    with pytest.raises(service.SettingsError, match="trigger mode"):
        service.connect(conn, ws, buyers, output, {"mode": "trigger", "output": {"segment_id": 7}}, NOW)
    row = service.connect(conn, ws, buyers, output, {"output": {"segment_id": 7}}, NOW)
    assert row.settings["output"] == {"segment_id": 7}
    deliver(pipeline, output)
    got = sorted((r.path, tuple(r.json()["ids"])) for r in vendor.requests())
    assert got == [("/api/v1/segments/7/add_customers?id_type=email", ("only@example.com",)),
                   ("/api/v1/segments/7/add_customers?id_type=id", ("c1",))]


def test_connect_refuses_what_cannot_be_done(pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    output = an_output(pipeline, vendor)
    conn, ws = pipeline.db.conn(), pipeline.workspace_id
    with pytest.raises(NotFound):
        service.connect(conn, ws, "aud_missing", output, {}, NOW)
    with pytest.raises(NotFound):
        service.connect(conn, ws, buyers, "out_missing", {}, NOW)
    for bad in ({"identity_types": ["shoe_size"]}, {"identity_types": []}, {"colour": "red"}, {"output": {"x": 1}},
                {"rules": {"sampling_percent": 200}}, {"rules": {"consent": {"gdpr_purposes": ["unlisted"]}}}):
        if bad.get("rules", {}).get("consent"):
            pipeline.setting("consent", {"gdpr_purposes": [{"name": "marketing"}]})
        with pytest.raises(service.SettingsError):
            service.connect(conn, ws, buyers, output, bad, NOW)
    with pytest.raises(service.SettingsError, match="takes no events"):
        service.connect(conn, ws, buyers, output, {"mode": "trigger"}, NOW)
    hook = an_output(pipeline, vendor, "webhook")
    with pytest.raises(service.SettingsError, match="cannot sync audiences"):
        service.connect(conn, ws, buyers, hook, {"mode": "sync"}, NOW)
    row = service.connect(conn, ws, buyers, output, {}, NOW)
    with pytest.raises(Conflict):
        service.connect(conn, ws, buyers, output, {}, NOW)
    with pytest.raises(service.SettingsError, match="cannot change"):
        service.update(conn, ws, buyers, row.id, {"mode": "trigger"}, NOW)
    assert service.update(conn, ws, buyers, row.id, {"identity_types": ["email"]}, NOW).settings == {
        "rules": {}, "identity_types": ["email"]}
    cio = OutputStore(conn, ws).create_output("Customer.io", "customerio", {"site_id": "s", "api_key": "k"}, True).id
    # Known identity types, none of which Customer.io takes: every member would be filtered out, so refused.
    with pytest.raises(service.SettingsError, match="takes none of them; it takes customer_id, email"):
        service.connect(conn, ws, buyers, cio, {"identity_types": ["ios_advertising_id"],
                                                "output": {"segment_id": 7}}, NOW)
    to_cio = service.connect(conn, ws, buyers, cio, {"output": {"segment_id": 7}}, NOW)
    with pytest.raises(service.SettingsError, match="cannot change"):
        service.update(conn, ws, buyers, to_cio.id, {"output": {"segment_id": 8}}, NOW)
    with pytest.raises(service.SettingsError, match="takes none of them"):
        service.update(conn, ws, buyers, to_cio.id, {"identity_types": ["ios_advertising_id"],
                                                     "output": {"segment_id": 7}}, NOW)
    # Two connects of the same pair racing past the check: the second insert is a conflict, not a server error.
    with pytest.raises(Conflict, match="already connected"):
        ConnectionStore(conn, ws).create(audience_id=buyers, audience_name="Buyers", output_id=cio, mode="sync",
                                         settings={}, change_cursor=0, member_cursor=None, update_cursor=0,
                                         now_ms=NOW)


def test_erasure_forgets_what_was_synced_and_a_deleted_output_ends_its_connections(
        pipeline: Pipeline, vendor: VendorCapture) -> None:
    buyers = an_audience(pipeline)
    pipeline.bulk(purchase(NOW, customer_id="gone"), purchase(NOW, customer_id="kept"))
    pipeline.process(now=NOW)
    output = an_output(pipeline, vendor)
    row = service.connect(pipeline.db.conn(), pipeline.workspace_id, buyers, output, {}, NOW)
    deliver(pipeline, output)
    with transaction(pipeline.db.conn()) as conn:
        counts = erase(conn, find_subject(conn, pipeline.workspace_id, {"customer_id": "gone"}))
    assert counts["audience_synced"] == 1
    assert pipeline.rows("SELECT mpid FROM audience_synced") == [(pipeline.holder("customer_id", "kept"),)]
    OutputStore(pipeline.db.conn(), pipeline.workspace_id).delete_output(output)
    sync.run_all(pipeline.db.conn())
    assert ConnectionStore(pipeline.db.conn(), pipeline.workspace_id).find(row.id) is None


def test_the_sync_worker_waits_for_changes_being_written_then_sees_them(postgres_stores: Any,
                                                                        tmp_path: Path) -> None:
    """PostgreSQL: a change whose transaction has not committed holds back the settled id (so no cursor skips it);
    the share lock lives only in that short read, not in the step that sends."""
    db = Database(DatabaseUrl.parse(postgres_stores.new_url()), data_dir=tmp_path)
    writer, reader, watcher = db.connect(), db.connect(), db.connect()
    try:
        writer.execute("BEGIN")
        MemberStore(writer, "ws").record([Change("aud_1", 7, "enter", NOW, "event")], NOW)
        found: list[tuple[int, int]] = []
        thread = threading.Thread(target=lambda: found.append(sync.settled(reader)))
        thread.start()
        eventually(lambda: watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'"
        ).fetchone()[0] == 1, timeout=10, what="the settling read waits for the writer")
        assert found == []
        writer.execute("COMMIT")
        thread.join(timeout=10)
        (change_id, _), = found
        assert MemberStore(watcher, "ws").changes("aud_1", 10, until=change_id)[0]["mpid"] == 7
        # Nothing is left locked: a writer records the next change at once, while no step runs.
        with transaction(writer):
            MemberStore(writer, "ws").record([Change("aud_1", 7, "exit", NOW + 1, "event")], NOW + 1)
        assert sync.settled(reader)[0] > change_id
    finally:
        for conn in (writer, reader, watcher):
            conn.close()
        db.close()
