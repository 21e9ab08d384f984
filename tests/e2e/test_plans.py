"""Data plans through a real `kaon serve`: upload checks, blocking to the quarantine, report, replay, activation."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import KaonServer, kaon
from support.stores import DIALECTS, server_env
from support.waiting import eventually


@pytest.fixture(scope="module", params=DIALECTS)
def kaon_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[KaonServer]:
    """One server per store dialect: data plans behave the same on SQLite and PostgreSQL."""
    server = KaonServer(tmp_path_factory.mktemp("plans"), env=server_env(request, request.param)).start()
    yield server
    server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def version(names: list[str], environment: str = "production", **blocking: bool) -> dict[str, Any]:
    points = [{"match": {"type": "custom_event", "criteria": {"event_name": n, "custom_event_type": "other"}},
               "validator": {"type": "json_schema", "definition": {"properties": {"data": {"properties": {
                   "custom_attributes": {"properties": {"price": {"type": "number"}}}}}}}}} for n in names]
    points += [{"match": {"type": "user_attributes", "criteria": {}}},
               {"match": {"type": "user_identities", "criteria": {}}}]
    return {"activated_environment": environment, "blocking": blocking, "version_document": {"data_points": points}}


def send(server: KaonServer, plan_id: str, *events: tuple[str, dict[str, Any]]) -> None:
    body = {"environment": "production", "user_identities": {"customer_id": unique("c")},
            "context": {"data_plan": {"plan_id": plan_id}},
            "events": [{"event_type": "custom_event", "data": {"event_name": n, "custom_event_type": "other",
                                                               "source_message_id": unique("m"),
                                                               "custom_attributes": a}} for n, a in events]}
    answer = httpx.post(f"{server.url}/v2/events", json=body, headers=server.basic(), timeout=30)
    assert answer.status_code == 202, answer.text


def quarantined(server: KaonServer, plan_id: str) -> list[dict[str, Any]]:
    entries = server.listed("/quarantine", "entries")
    return [e for e in entries if e["plan_id"] == plan_id]


def report(server: KaonServer, plan_id: str) -> dict[tuple[str, str], int]:
    rows = server.listed(f"/plans/{plan_id}/report", "violations", since="1d")
    return {(r["data_point"], r["violation"]): r["count"] for r in rows}


def create(server: KaonServer, plan_id: str, *versions: dict[str, Any]) -> dict[str, Any]:
    answer = server.admin("POST", "/plans", json={"data_plan_id": plan_id, "data_plan_name": plan_id,
                                                  "data_plan_versions": list(versions)})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def test_malformed_plans_are_refused_with_pointers(kaon_server: KaonServer) -> None:
    bad = version(["Buy"])
    bad["version_document"]["data_points"][0]["validator"]["definition"]["properties"]["data"]["anyOf"] = []
    bad["version_document"]["data_points"][1]["match"] = {"type": "screen_view", "criteria": {}}
    answer = kaon_server.admin("POST", "/plans", json={"data_plan_id": unique("bad"), "data_plan_versions": [bad]})
    assert answer.status_code == 400
    errors = {(e["error_type"], e["schema_pointer"]) for e in answer.json()["errors"]}
    root = "#/data_plan_versions/0/version_document/data_points"
    assert errors == {("unsupported_keyword", f"{root}/0/validator/definition/properties/data/anyOf"),
                      ("missing_criteria", f"{root}/1/match/criteria/screen_name")}
    assert answer.json()["errors"][0]["match_key"] == "custom_event:other:Buy"
    assert all(not p["data_plan_id"].startswith("bad-") for p in kaon_server.listed("/plans", "plans"))


def test_blocked_data_is_quarantined_invalid_data_counted_and_replay_stores_it(kaon_server: KaonServer) -> None:
    plan_id = unique("shop")
    create(kaon_server, plan_id, version(["Buy"], unplanned_events=True))
    buy, spy = unique("Buy"), unique("Spy")
    # v2 plans this test's own unique event name (and is the latest version active in production).
    answer = kaon_server.admin("POST", f"/plans/{plan_id}/versions", json=version([buy], unplanned_events=True))
    assert answer.status_code == 201, answer.text
    assert answer.json()["data_plan_versions"][1]["version"] == 2
    send(kaon_server, plan_id, (buy, {"price": "abc"}), (spy, {"price": 1}))
    eventually(lambda: kaon_server.events_named(buy), what="planned event stored")
    [entry] = eventually(lambda: quarantined(kaon_server, plan_id), what="quarantined")
    assert kaon_server.events_named(spy) == []
    assert entry["reasons"] == [{"reason": "unplanned_event", "data_point": f"custom_event:other:{spy}",
                                 "source_message_id": entry["batch"]["events"][1]["data"]["source_message_id"]}]
    assert entry["plan_version"] == 2
    assert [e["data"]["event_name"] for e in entry["batch"]["events"]] == [buy, spy]
    counts = eventually(lambda: report(kaon_server, plan_id), what="report")
    assert counts == {(f"custom_event:other:{buy}", "invalid_value"): 1,
                      (f"custom_event:other:{spy}", "unplanned_event"): 1}

    # Fix the plan: a new version, activated by PATCH, then replay through the API.
    answer = kaon_server.admin("POST", f"/plans/{plan_id}/versions",
                               json=version([buy, spy], environment="none", unplanned_events=True))
    assert answer.status_code == 201
    answer = kaon_server.admin("PATCH", f"/plans/{plan_id}/versions/3", json={"activated_environment": "production"})
    assert answer.status_code == 200, answer.text
    answer = kaon_server.admin("POST", "/quarantine/replay", json={"ids": [entry["id"]]})
    assert answer.json() == {"queued": 1, "ids": [entry["id"]]}
    eventually(lambda: kaon_server.events_named(spy), what="replayed event stored")
    eventually(lambda: quarantined(kaon_server, plan_id) == [], what="left the quarantine")
    assert len(kaon_server.events_named(buy)) == 1
    assert report(kaon_server, plan_id) == counts  # the replay is not counted again


def test_cli_lists_and_replays_the_quarantine(kaon_server: KaonServer) -> None:
    plan_id = unique("cli")
    spy = unique("Spy")
    create(kaon_server, plan_id, version(["Buy"], unplanned_events=True))
    send(kaon_server, plan_id, (spy, {}))
    [entry] = eventually(lambda: quarantined(kaon_server, plan_id), what="quarantined")
    listed = kaon("quarantine", "list", "--json", data_dir=kaon_server.data_dir, env=kaon_server.env)
    assert listed.returncode == 0, listed.stderr
    assert entry["id"] in [e["id"] for e in json.loads(listed.stdout)["entries"]]
    kaon_server.admin("PATCH", f"/plans/{plan_id}/versions/1", json={"blocking": {"unplanned_events": False}})
    done = kaon("quarantine", "replay", str(entry["id"]), "--json", data_dir=kaon_server.data_dir,
                env=kaon_server.env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queued"] == 1
    eventually(lambda: kaon_server.events_named(spy), what="replayed by the CLI")
    eventually(lambda: quarantined(kaon_server, plan_id) == [], what="left the quarantine")


def test_activation_and_version_changes_are_all_or_nothing(kaon_server: KaonServer) -> None:
    plan_id = unique("atomic")
    create(kaon_server, plan_id, version(["A"]))
    before = kaon_server.admin("GET", f"/plans/{plan_id}").json()
    bad = version(["B"])
    bad["version_document"]["data_points"][0]["validator"]["definition"]["not"] = {}
    answer = kaon_server.admin("POST", f"/plans/{plan_id}/versions", json=bad)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["schema_pointer"] == "#/version_document/data_points/0/validator/definition/not"
    answer = kaon_server.admin("PATCH", f"/plans/{plan_id}/versions/1", json={"activated_environment": "staging"})
    assert answer.status_code == 400
    assert kaon_server.admin("PATCH", f"/plans/{plan_id}/versions/9", json={"activated_environment": "none"}) \
        .status_code == 404
    assert kaon_server.admin("GET", f"/plans/{plan_id}").json() == before
    assert kaon_server.admin("POST", "/plans", json={"data_plan_id": plan_id}).status_code == 409


def test_validate_endpoint_returns_mparticle_results(kaon_server: KaonServer) -> None:
    document = version(["Buy"])["version_document"]
    batch = {"events": [{"event_type": "custom_event", "data": {
        "event_name": "Buy", "custom_event_type": "other", "source_message_id": "m1",
        "custom_attributes": {"price": "12.5"}}},
        {"event_type": "custom_event", "data": {"event_name": "Nope", "custom_event_type": "other",
                                                "custom_attributes": {"price": "x"}}}]}
    answer = kaon_server.admin("POST", "/plans/validate", json={"document": document, "batch": batch})
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["results"]
    assert first["validation_errors"] == []
    assert first["data"]["validated_source_message_id"] == "m1"
    assert second["validation_errors"] == [{"validation_error_type": "unplanned", "key": "Nope", "error_pointer": "#"}]
    bad = kaon_server.admin("POST", "/plans/validate", json={"document": document, "batch": {"events": 3}})
    assert bad.status_code == 400


def test_an_inputs_default_plan_applies_when_a_batch_names_none(kaon_server: KaonServer) -> None:
    plan_id = unique("default")
    buy, spy = unique("Buy"), unique("Spy")
    create(kaon_server, plan_id, version([buy], unplanned_events=True))
    item = kaon_server.admin("POST", "/inputs", json={"name": unique("in"), "platform": "server"}).json()
    unknown = kaon_server.admin("PATCH", f"/inputs/{item['id']}", json={"default_plan_id": unique("nope")})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["code"] == "UNKNOWN_PLAN"
    patched = kaon_server.admin("PATCH", f"/inputs/{item['id']}",
                                json={"default_plan_id": plan_id, "default_plan_version": None})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["default_plan_id"], patched.json()["default_plan_version"]) == (plan_id, None)
    assert kaon_server.admin("GET", f"/inputs/{item['id']}").json()["default_plan_id"] == plan_id
    body = {"environment": "production", "user_identities": {"customer_id": unique("c")},
            "events": [{"event_type": "custom_event", "data": {"event_name": n, "custom_event_type": "other"}}
                       for n in (buy, spy)]}
    answer = httpx.post(f"{kaon_server.url}/v2/events", json=body, timeout=30,
                        headers=kaon_server.basic(item["key"], item["secret"]))
    assert answer.status_code == 202, answer.text
    eventually(lambda: kaon_server.events_named(buy), what="planned event stored")
    [entry] = eventually(lambda: quarantined(kaon_server, plan_id), what="unplanned event quarantined by default")
    assert entry["input_id"] == item["id"] and kaon_server.events_named(spy) == []
    # Cleared: the input's batches pass unvalidated again.
    cleared = kaon_server.admin("PATCH", f"/inputs/{item['id']}", json={"default_plan_id": None})
    assert cleared.status_code == 200 and cleared.json()["default_plan_id"] is None
    other = unique("Spy")
    body["events"] = [{"event_type": "custom_event", "data": {"event_name": other, "custom_event_type": "other"}}]
    httpx.post(f"{kaon_server.url}/v2/events", json=body, timeout=30,
               headers=kaon_server.basic(item["key"], item["secret"])).raise_for_status()
    eventually(lambda: kaon_server.events_named(other), what="unvalidated event stored")


def test_a_plan_over_10_mb_is_refused(kaon_server: KaonServer) -> None:
    plan_id = unique("huge")
    big = version(["Buy"])
    big["version_description"] = "x" * (10 * 1024 * 1024)
    answer = kaon_server.admin("POST", "/plans", json={"data_plan_id": plan_id, "data_plan_versions": [big]})
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["errors"][0]["code"] == "PLAN_TOO_LARGE"
    create(kaon_server, plan_id, version(["Buy"]))
    added = kaon_server.admin("POST", f"/plans/{plan_id}/versions", json=big)
    assert added.status_code == 400 and added.json()["errors"][0]["code"] == "PLAN_TOO_LARGE"
    assert len(kaon_server.admin("GET", f"/plans/{plan_id}").json()["data_plan_versions"]) == 1


def test_validate_needs_an_admin_token(kaon_server: KaonServer) -> None:
    body = {"document": version(["Buy"])["version_document"], "batch": {"events": []}}
    answer = httpx.post(f"{kaon_server.url}/api/v1/plans/validate", json=body, timeout=30)
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_catastrophic_pattern_is_answered_promptly_and_other_doors_answer_meanwhile(
        kaon_server: KaonServer) -> None:
    import threading
    document = {"data_points": [{"match": {"type": "user_attributes", "criteria": {}}, "validator": {
        "type": "json_schema", "definition": {"properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}}}]}
    batch = {"user_attributes": {"code": "a" * 40 + "!"}, "events": []}
    answers: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: answers.append(kaon_server.admin(
        "POST", "/plans/validate", json={"document": document, "batch": batch})), daemon=True)
    worker.start()
    health = httpx.get(f"{kaon_server.url}/api/v1/health", timeout=30)
    assert health.status_code == 200
    # Under a backtracking engine this validation takes 2^40 steps; with RE2 it answers at once.
    eventually(lambda: answers, timeout=10, what="the validation answered")
    assert answers[0].status_code == 200, answers[0].text


def test_a_plan_with_a_backreference_is_refused_with_the_code(kaon_server: KaonServer) -> None:
    points = [{"match": {"type": "user_attributes", "criteria": {}}, "validator": {"type": "json_schema",
               "definition": {"properties": {"code": {"type": "string", "pattern": r"^(a)\1$"}}}}}]
    answer = kaon_server.admin("POST", "/plans", json={"data_plan_id": unique("re"), "data_plan_versions": [
        {"version_document": {"data_points": points}}]})
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["errors"]
    assert error["error_type"] == "unsupported_pattern"
    assert error["schema_pointer"] == ("#/data_plan_versions/0/version_document/data_points/0/validator/definition"
                                      "/properties/code/pattern")
