"""Audiences and calculated attributes through a real `kaon serve` on both store dialects: the admin API (refusals
with pointers, activation with backfill progress, members, size, estimate, changes, deactivation, redefinition),
events sent by Segment's Python SDK, and the values and memberships on the profile and the mParticle Profile API.
"""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from segment.analytics import Client

from support import server_sdks as sdks
from support.server import KaonServer
from support.stores import DIALECTS, server_env
from support.waiting import eventually


@pytest.fixture(scope="module", params=DIALECTS)
def kaon_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[KaonServer]:
    server = KaonServer(tmp_path_factory.mktemp("audiences"), env=server_env(request, request.param)).start()
    yield server
    server.stop()


def tag() -> str:
    return uuid.uuid4().hex[:8]


def created(server: KaonServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = server.admin("POST", path, json=body)
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def refused(server: KaonServer, method: str, path: str, body: object) -> tuple[int, dict[str, Any]]:
    answer = server.admin(method, path, json=body)
    error: dict[str, Any] = answer.json()["errors"][0]
    return answer.status_code, error


def purchase_sum(name: str) -> dict[str, Any]:
    return {"name": name, "description": "what they spent", "draft_definition": {
        "recipe_type": "event", "data_point": {"type": "event", "event_type": "commerce_event",
                                               "event_name": "purchase", "attribute_name": "total_amount"},
        "conditions": [], "calculation_type": "sum", "time_period": {"type": "within", "within": 30,
                                                                     "within_unit": "days"}}}


def active(server: KaonServer, path: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found: dict[str, Any] = server.admin("GET", path).json()
        return found if found["status"] == "active" else None
    return eventually(probe, timeout=30, what=f"{path} active")


def test_invalid_definitions_are_refused_with_a_pointer_to_the_bad_node(kaon_server: KaonServer) -> None:
    server = kaon_server
    bad_window = purchase_sum(f"bad-{tag()}")
    bad_window["draft_definition"]["time_period"] = {"type": "within", "within": 0, "within_unit": "days"}
    assert refused(server, "POST", "/calculated-attributes", bad_window) == (400, {
        "code": "INVALID_DEFINITION", "pointer": "#/draft_definition/time_period/within",
        "message": "must be a whole number of days or weeks, at least 1 - at `#/draft_definition/time_period/within`"})
    typo = purchase_sum(f"bad-{tag()}")
    typo["draft_definition"]["data_point"]["atribute_name"] = "total"
    status, error = refused(server, "POST", "/calculated-attributes", typo)
    assert (status, error["pointer"]) == (400, "#/draft_definition/data_point/atribute_name")
    no_attribute = purchase_sum(f"bad-{tag()}")
    del no_attribute["draft_definition"]["data_point"]["attribute_name"]
    status, error = refused(server, "POST", "/calculated-attributes", no_attribute)
    assert (status, error["pointer"]) == (400, "#/draft_definition/data_point/attribute_name")
    cases = [
        ({"all": []}, "#/definition/all"),
        ({"all": [{"event": {"name": "x"}}, {"event": {"within": "soon"}}]}, "#/definition/all/1/event/within"),
        ({"any": [{"not": {"user_attribute": {"name": "tier", "operator": "near", "value": 1}}}]},
         "#/definition/any/0/not/user_attribute/operator"),
        ({"sequence": {"first": {"name": "add_to_cart"}, "then_not": {"name": "purchase"}}},
         "#/definition/sequence/gap"),
        ({"event": {"name": "x", "frequency": {"at_least": -1}}}, "#/definition/event/frequency/at_least"),
        ({"audience": {"id": "aud_missing"}}, "#/definition"),
        ({"shoe_size": 9}, "#/definition"),
        ({"event": {"name": "x", "witin": "1d"}}, "#/definition/event/witin"),
        ({"sequence": {"first": {"name": "a", "conditions": "no"}, "then_not": {"name": "b"}, "gap": "1h"}},
         "#/definition/sequence/first/conditions"),
        ({"any": [{"event": {"name": "n" * 200, "conditions": [
            {"attribute_name": f"a{i}", "operator": "equals", "value": "v" * 900} for i in range(50)]}}] * 2},
         "#/definition"),
    ]
    for definition, pointer in cases:
        status, error = refused(server, "POST", "/audiences", {"name": f"bad-{tag()}", "definition": definition})
        assert (status, error["code"], error["pointer"]) == (400, "INVALID_DEFINITION", pointer), definition
    status, error = refused(server, "POST", "/audiences", {"name": "x" * 101, "definition": {"event": {"name": "x"}}})
    assert (status, error["pointer"]) == (400, "#/name")
    assert server.admin("GET", "/audiences/aud_nope").status_code == 404
    assert server.admin("POST", "/calculated-attributes/ca_nope/activate").status_code == 404
    name = f"dup-{tag()}"
    created(server, "/audiences", {"name": name, "definition": {"event": {"name": "x"}}})
    status, error = refused(server, "POST", "/audiences", {"name": name, "definition": {"event": {"name": "y"}}})
    assert (status, error["code"]) == (409, "CONFLICT")


def test_audiences_that_name_each_other_cannot_loop_and_a_named_one_cannot_be_deleted(
        kaon_server: KaonServer) -> None:
    server = kaon_server
    a = created(server, "/audiences", {"name": f"a-{tag()}", "definition": {"event": {"name": "x"}}})
    b = created(server, "/audiences", {"name": f"b-{tag()}", "definition": {"audience": {"id": a["id"]}}})
    status, error = refused(server, "PUT", f"/audiences/{a['id']}", {"definition": {"audience": {"id": b["id"]}}})
    assert (status, error["pointer"]) == (400, "#/definition")
    assert "cycle" in error["message"]
    status, error = refused(server, "DELETE", f"/audiences/{a['id']}", None)
    assert (status, error["code"]) == (409, "CONFLICT")
    assert server.admin("DELETE", f"/audiences/{b['id']}").status_code == 200
    assert server.admin("DELETE", f"/audiences/{a['id']}").status_code == 200
    assert server.admin("GET", f"/audiences/{a['id']}").status_code == 404


def test_sdk_events_fill_values_and_memberships_backfilled_then_live(kaon_server: KaonServer) -> None:
    server = kaon_server
    t = tag()
    users = [f"user-{t}-{i}" for i in range(3)]
    segment = Client(server.web_key, **sdks.segment_python(server.url), sync_mode=True, max_retries=0)
    # History before the activation: two purchases by the first user, one by the second.
    for user, total in ((users[0], 30.0), (users[0], 50.0), (users[1], 5.0)):
        segment.track(user, "Order Completed", {"order_id": f"o-{uuid.uuid4().hex[:6]}", "total": total,
                                                "currency": "USD"})
    eventually(lambda: len(server.events(event_type="commerce_event", since="1h")) >= 3 and all(
        server.profile("customer_id", u) for u in users[:2]), timeout=30, what="history stored")
    attribute = created(server, "/calculated-attributes", purchase_sum(f"spend-{t}"))
    assert attribute["status"] == "draft" and attribute["active_definition"] is None
    audience = created(server, "/audiences", {"name": f"Spenders {t}", "definition": {"all": [
        {"calculated_attribute": {"name": f"spend-{t}", "operator": "greater_or_equal", "value": 10}},
        {"event": {"event_type": "commerce_event", "name": "purchase", "within": "1d"}}]}})
    activated = server.admin("POST", f"/calculated-attributes/{attribute['id']}/activate")
    assert activated.status_code == 202 and activated.json()["status"] in ("backfilling", "active")
    done = active(server, f"/calculated-attributes/{attribute['id']}")
    assert done["active_definition"] == done["draft_definition"]
    assert done["backfill"]["phase"] == "done" and done["backfill"]["events_done"] >= 3
    assert done["audience_count"] == 1
    assert server.admin("POST", f"/audiences/{audience['id']}/activate").status_code == 202
    active(server, f"/audiences/{audience['id']}")
    first = server.profile("customer_id", users[0])
    assert first is not None
    assert first["calculated_attributes"] == {f"spend-{t}": "80"}
    members = server.listed(f"/audiences/{audience['id']}/members", "members", limit=1)
    assert [m["mpid"] for m in members] == [first["mpid"]]
    # Live: the second user buys again and enters; the third user's first purchase is too small.
    segment.track(users[1], "Order Completed", {"order_id": f"o-{t}", "total": 7.5, "currency": "USD"})
    segment.track(users[2], "Order Completed", {"order_id": f"p-{t}", "total": 2.0, "currency": "USD"})
    eventually(lambda: len(server.listed(f"/audiences/{audience['id']}/members", "members")) == 2, timeout=30,
               what="the second user enters")
    second = server.profile("customer_id", users[1])
    assert second is not None and second["calculated_attributes"] == {f"spend-{t}": "12.5"}
    size = server.admin("GET", f"/audiences/{audience['id']}/size").json()
    assert (size["size"], size["added_last_24_hours"], size["dropped_last_24_hours"]) == (2, 2, 0)
    listed = [a for a in server.listed("/audiences", "audiences") if a["id"] == audience["id"]]
    assert listed[0]["size"] == 2 and listed[0]["status"] == "active" and listed[0]["is_calculated"] is True
    # The mParticle Profile API: calculated values among user attributes, the audience among memberships.
    api = httpx.get(f"{server.url}/userprofile/v1/org/acct/{server.init['workspace_id']}/{second['mpid']}",
                    params={"fields": "user_attributes,audience_memberships"},
                    headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=30)
    assert api.status_code == 200, api.text
    assert api.json()["user_attributes"][f"spend-{t}"] == "12.5"
    assert api.json()["audience_memberships"] == [{"audience_id": audience["id"],
                                                   "audience_name": f"Spenders {t}", "expiration_timestamp_ms": None}]
    # An estimate of a stricter draft, without saving it.
    estimate = server.admin("POST", "/audiences/estimate", json={"definition": {
        "calculated_attribute": {"name": f"spend-{t}", "operator": "greater_than", "value": 50}}})
    assert estimate.status_code == 200, estimate.text
    assert estimate.json()["size"] == 1 and estimate.json()["exact"] is True
    # Deactivation: every member leaves, recorded as exits.
    off = server.admin("POST", f"/audiences/{audience['id']}/deactivate")
    assert off.status_code == 200 and off.json()["status"] == "inactive" and off.json()["size"] == 0
    changes = server.listed("/audiences/changes", "changes", audience_id=audience["id"])
    assert sorted((c["mpid"], c["action"], c["cause"]) for c in changes) == sorted([
        (first["mpid"], "enter", "activation"), (second["mpid"], "enter", "event"),
        (first["mpid"], "exit", "deactivated"), (second["mpid"], "exit", "deactivated")])


def test_a_read_only_token_reads_audiences_but_cannot_change_them(kaon_server: KaonServer) -> None:
    server = kaon_server
    made = server.admin("POST", "/tokens", json={"name": f"ro-{tag()}", "scope": "read"})
    assert made.status_code == 201, made.text
    headers = {"Authorization": f"Bearer {made.json()['token']}"}
    base = f"{server.url}/api/v1"
    assert httpx.get(f"{base}/audiences", headers=headers, timeout=30).status_code == 200
    assert httpx.get(f"{base}/calculated-attributes", headers=headers, timeout=30).status_code == 200
    for path in ("/audiences", "/calculated-attributes"):
        answer = httpx.post(f"{base}{path}", headers=headers, json={"name": "x"}, timeout=30)
        assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == "READ_ONLY_TOKEN"


def test_a_window_rolling_off_makes_the_profile_leave_with_no_new_event(kaon_server: KaonServer) -> None:
    """The running server's scheduler applies time-driven exits (every 10 s; no event arrives)."""
    server = kaon_server
    t = tag()
    audience = created(server, "/audiences", {"name": f"Just clicked {t}", "definition": {
        "event": {"event_type": "custom_event", "name": f"click-{t}", "within": "2s"}}})
    assert server.admin("POST", f"/audiences/{audience['id']}/activate").status_code == 202
    active(server, f"/audiences/{audience['id']}")
    body = {"environment": "production", "user_identities": {"customer_id": f"clicker-{t}"},
            "events": [{"event_type": "custom_event", "data": {"event_name": f"click-{t}",
                                                               "custom_event_type": "other"}}]}
    assert httpx.post(f"{server.url}/v2/events", json=body, headers=server.basic(), timeout=30).status_code == 202
    path = f"/audiences/{audience['id']}/members"
    eventually(lambda: len(server.listed(path, "members")) == 1, timeout=30, what="the clicker enters")
    eventually(lambda: not server.listed(path, "members"), timeout=40, what="the clicker leaves on time")
    changes = server.listed("/audiences/changes", "changes", audience_id=audience["id"])
    (enter, leave) = changes
    assert (enter["action"], enter["cause"], leave["action"], leave["cause"]) == ("enter", "event", "exit", "time")
    # Recorded at the time it became true: 2 s after the click's time (its receive time), not when applied.
    (click,) = server.events_named(f"click-{t}")
    assert leave["at_unixtime_ms"] == click["timestamp_unixtime_ms"] + 2_000
    assert leave["recorded_unixtime_ms"] >= leave["at_unixtime_ms"]
