"""`kaon audiences|calculated`: list, status, and activation that backfills with a progress bar."""

import json
from pathlib import Path

from kaon.audiences import service
from kaon.audiences.engine import current_values
from kaon.store.outputs import OutputStore
from support.pipeline import NOW, a_pipeline
from support.server import kaon


def test_activate_backfills_with_a_progress_bar_and_status_reports_it(tmp_path: Path) -> None:
    with a_pipeline(tmp_path, workspace="shop") as p:
        p.bulk(*({"environment": "production", "user_identities": {"customer_id": f"c{i % 3}"},
                  "events": [{"event_type": "custom_event", "data": {"event_name": "view", "custom_event_type": "other",
                                                                     "timestamp_unixtime_ms": NOW - i}}]}
                 for i in range(12)))
        p.process()
        row = service.create_calculated(p.db.conn(), p.workspace_id, {"name": "views", "draft_definition": {
            "data_point": {"event_type": "custom_event", "event_name": "view"}, "calculation_type": "count"}},
            "test", NOW)
        listed = kaon("calculated", "list", "--json", "--workspace", "shop", data_dir=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert [(r["id"], r["status"]) for r in json.loads(listed.stdout)] == [(row.id, "draft")]
        done = kaon("calculated", "activate", row.id, "--workspace", "shop", data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "12/12 events" in done.stderr and f"{row.id} active" in done.stderr
        status = json.loads(kaon("calculated", "status", row.id, "--workspace", "shop", data_dir=tmp_path).stdout)
        assert status["status"] == "active" and status["backfill"]["events_done"] == 12
        for customer, expected in (("c0", "4"), ("c1", "4"), ("c2", "4")):
            # An all-time count: the CLI backfills with the real clock, which does not matter here.
            assert current_values(p.db.conn(), p.workspace_id, p.holder("customer_id", customer), NOW) == {
                "views": expected}


def test_an_unknown_id_is_an_error_with_exit_2(tmp_path: Path) -> None:
    with a_pipeline(tmp_path, workspace="shop"):
        pass
    for command in ("audiences", "calculated"):
        found = kaon(command, "activate", "nope", "--workspace", "shop", "--json", data_dir=tmp_path)
        assert found.returncode == 2
        assert "nope" in json.loads(found.stderr)["error"]


def test_connect_list_and_disconnect_an_audience_from_the_command_line(tmp_path: Path) -> None:
    with a_pipeline(tmp_path, workspace="shop") as p:
        row = service.create_audience(p.db.conn(), p.workspace_id, {"name": "Buyers", "definition": {
            "event": {"event_type": "commerce_event", "name": "purchase"}}}, "test", NOW)
        output = OutputStore(p.db.conn(), p.workspace_id).create_output(
            "hook", "audience_webhook", {"base_url": "http://127.0.0.1:9/hook"}, True).id
    connected = kaon("audiences", "connect", row.id, output, "--settings", '{"identity_types": ["email"]}',
                     "--workspace", "shop", "--json", data_dir=tmp_path)
    assert connected.returncode == 0, connected.stderr
    made = json.loads(connected.stdout)
    assert (made["output_id"], made["mode"], made["status"]) == (output, "sync", "syncing")
    assert made["settings"]["identity_types"] == ["email"]
    again = kaon("audiences", "connect", row.id, output, "--workspace", "shop", "--json", data_dir=tmp_path)
    assert again.returncode == 2 and "already connected" in json.loads(again.stderr)["error"]
    bad = kaon("audiences", "connect", row.id, output, "--settings", "{mode", "--workspace", "shop", data_dir=tmp_path)
    assert bad.returncode == 2 and "--settings is not JSON" in bad.stderr
    listed = kaon("audiences", "connections", row.id, "--workspace", "shop", data_dir=tmp_path)
    assert listed.returncode == 0 and listed.stdout.split("\t")[:3] == [made["id"], output, "sync"]
    gone = kaon("audiences", "disconnect", row.id, made["id"], "--workspace", "shop", "--json", data_dir=tmp_path)
    assert gone.returncode == 0 and json.loads(gone.stdout)["status"] == "disconnecting"
    unknown = kaon("audiences", "connections", "aud_nope", "--workspace", "shop", "--json", data_dir=tmp_path)
    assert unknown.returncode == 2 and "aud_nope" in json.loads(unknown.stderr)["error"]
