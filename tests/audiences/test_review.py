"""A review and attacker's pass over audiences and calculated attributes: each finding as a test (all fixed).

Run on SQLite through the real process stage (`support.pipeline`), plus one real `kaon serve` for the 500s.
"""

import contextlib
import fnmatch
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaon.audiences import service
from kaon.audiences.backfill import run_backfills
from kaon.audiences.calculated import parse_definition
from kaon.audiences.conditions import glob_match
from kaon.audiences.definition import parse_audience
from kaon.audiences.engine import current_values
from kaon.audiences.errors import DefinitionError
from kaon.audiences.estimate import estimate
from kaon.audiences.schedule import run_due_changes
from kaon.audiences.store import DefinitionStore, MemberStore
from kaon.errors import Conflict
from kaon.store.config import ConfigStore
from kaon.store.tx import transaction
from support.pipeline import NOW, Pipeline, a_pipeline
from support.server import KaonServer

HOUR = 3_600_000


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with a_pipeline(tmp_path) as made:
        yield made


def commerce(action: str, at: int, amount: float = 0.0, **identities: str) -> dict[str, Any]:
    return {"environment": "production", "user_identities": identities or {"customer_id": "c"},
            "events": [{"event_type": "commerce_event", "data": {
                "timestamp_unixtime_ms": at, "product_action": {"action": action, "total_amount": amount}}}]}


def calculated(p: Pipeline, name: str, calculation: str, attribute: str | None = "total_amount") -> str:
    point: dict[str, Any] = {"event_type": "commerce_event", "event_name": "purchase"}
    if attribute:
        point["attribute_name"] = attribute
    row = service.create_calculated(p.db.conn(), p.workspace_id, {"name": name, "draft_definition": {
        "data_point": point, "calculation_type": calculation}}, "test", NOW)
    service.activate_calculated(p.db.conn(), p.workspace_id, row.id, "test", NOW)
    return row.id


def audience(p: Pipeline, name: str, definition: dict[str, Any], workspace_id: str | None = None) -> str:
    ws = workspace_id or p.workspace_id
    row = service.create_audience(p.db.conn(), ws, {"name": name, "definition": definition}, "test", NOW)
    service.activate_audience(p.db.conn(), ws, row.id, "test", NOW)
    return row.id


def members(p: Pipeline, audience_id: str) -> dict[int, int]:
    return dict(MemberStore(p.db.conn(), p.workspace_id).members(audience_id, -1))


def changes(p: Pipeline, audience_id: str) -> list[tuple[int, str, str]]:
    return [(c["mpid"], c["action"], c["cause"])
            for c in MemberStore(p.db.conn(), p.workspace_id).changes(audience_id, -1)]


def tick(p: Pipeline, at: int) -> None:
    with transaction(p.db.conn()) as conn:
        run_due_changes(conn, at)


# --- Finding 1: non-finite numbers are accepted, stored as null, and poison the workspace ---------------------


def test_an_infinite_condition_value_is_refused(pipeline: Pipeline) -> None:
    with pytest.raises(DefinitionError):
        service.create_audience(pipeline.db.conn(), pipeline.workspace_id, {"name": "inf", "definition": {
            "user_attribute": {"name": "x", "operator": "greater_than", "value": math.inf}}}, "test", NOW)


def test_one_nonfinite_definition_does_not_block_every_later_audience(pipeline: Pipeline) -> None:
    conn = pipeline.db.conn()
    with contextlib.suppress(DefinitionError):  # refused: the fix
        service.create_audience(conn, pipeline.workspace_id, {"name": "inf", "definition": {
            "user_attribute": {"name": "x", "operator": "greater_than", "value": math.inf}}}, "test", NOW)
    made = service.create_audience(conn, pipeline.workspace_id, {"name": "fine", "definition": {
        "event": {"name": "purchase"}}}, "test", NOW)
    assert made.status == "draft"


def test_an_unparsable_stored_definition_does_not_stop_other_backfills(pipeline: Pipeline) -> None:
    conn = pipeline.db.conn()
    other = ConfigStore(conn).create_workspace("other").id
    broken = audience(pipeline, "broken", {"event": {"name": "purchase"}})
    good = audience(pipeline, "good", {"event": {"name": "purchase"}}, workspace_id=other)
    # A definition that does not parse any more (a stored null from a non-finite number, or an older Kaon's).
    with transaction(conn):
        conn.execute("UPDATE segment_definitions SET body = ? WHERE id = ?",
                     ('{"definition": {"user_attribute": {"name": "x", "operator": "greater_than", "value": null}}}',
                      broken))
    run_backfills(conn, lambda: NOW)
    assert DefinitionStore(conn, other).get("audience", good).status == "active"


def _number_cases() -> list[tuple[str, Any]]:
    return [
        ("bigint-number", {"user_attribute": {"name": "x", "operator": "greater_than", "value": 10**400}}),
        ("inf-date", {"last_seen": {"operator": "before", "value": math.inf}}),
        ("nan-date", {"last_seen": {"operator": "before", "value": math.nan}}),
        ("inf-between", {"event": {"name": "x", "between": {"from": math.inf, "to": 1}}}),
        ("nan-between", {"user_attribute": {"name": "x", "operator": "between", "min_value": math.nan,
                                            "max_value": 1}}),
    ]


@pytest.mark.parametrize(("case", "definition"), _number_cases(), ids=[c for c, _ in _number_cases()])
def test_odd_numbers_in_an_audience_are_a_definition_error(case: str, definition: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError):
        parse_audience(definition)


def test_an_infinite_since_date_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError):
        parse_definition({"calculation_type": "count", "data_point": {"event_name": "purchase"},
                          "time_period": {"type": "since", "date": math.inf}})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    made = KaonServer(tmp_path_factory.mktemp("review")).start()
    yield made
    made.stop()


def _post(server: KaonServer, path: str, text: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1{path}", content=text, timeout=30, headers={
        "Authorization": f"Bearer {server.admin_token}", "Content-Type": "application/json"})


def test_odd_numbers_are_400_not_500_on_a_real_server(server: KaonServer) -> None:
    big = "1" + "0" * 400
    bodies = [
        ("/audiences", '{"name": "n1", "definition": {"user_attribute": {"name": "x", "operator": "greater_than",'
                       ' "value": ' + big + '}}}'),
        ("/audiences", '{"name": "n2", "definition": {"last_seen": {"operator": "before", "value": 1e999}}}'),
        ("/audiences", '{"name": "n3", "definition": {"last_seen": {"operator": "before", "value": NaN}}}'),
        ("/audiences", '{"name": "n4", "definition": {"event": {"name": "x", "between": {"from": 1e999, "to": 1}}}}'),
        ("/audiences/estimate", '{"definition": {"user_attribute": {"name": "x", "operator": "less_than",'
                                ' "value": ' + big + '}}}'),
        ("/calculated-attributes", '{"name": "n5", "draft_definition": {"calculation_type": "count", "data_point":'
                                   ' {"event_name": "x"}, "time_period": {"type": "since", "date": 1e999}}}'),
    ]
    answers = {path + " " + text[:60]: _post(server, path, text).status_code for path, text in bodies}
    assert all(400 <= status < 500 for status in answers.values()), answers


def test_a_read_token_is_refused_on_every_audience_write(server: KaonServer) -> None:
    """Proof (passes): a `read` token changes nothing; estimate (a POST that saves nothing) is allowed."""
    made = httpx.post(f"{server.url}/api/v1/tokens", timeout=30, json={"name": f"r-{uuid.uuid4().hex[:6]}",
                                                                            "scope": "read"},
                      headers={"Authorization": f"Bearer {server.admin_token}"})
    assert made.status_code == 201, made.text
    read = {"Authorization": f"Bearer {made.json()['token']}"}
    ok = server.admin("POST", "/audiences", json={"name": f"r-{uuid.uuid4().hex[:6]}",
                                                  "definition": {"event": {"name": "x"}}})
    assert ok.status_code == 201, ok.text
    aid = ok.json()["id"]
    for method, path, body in [("POST", "/audiences", {"name": "x", "definition": {"event": {"name": "x"}}}),
                               ("PUT", f"/audiences/{aid}", {"name": "y"}),
                               ("POST", f"/audiences/{aid}/activate", None),
                               ("POST", f"/audiences/{aid}/deactivate", None),
                               ("DELETE", f"/audiences/{aid}", None),
                               ("POST", "/calculated-attributes", {"name": "x"})]:
        answer = httpx.request(method, f"{server.url}/api/v1{path}", json=body, headers=read, timeout=30)
        assert answer.status_code == 403, (method, path, answer.status_code)
    estimated = httpx.post(f"{server.url}/api/v1/audiences/estimate", headers=read, timeout=30,
                           json={"definition": {"event": {"name": "x"}}})
    assert estimated.status_code == 200, estimated.text


# --- Finding 2: a sum that overflows to inf is saved as null and breaks the profile and the scheduler chore ----


def test_an_overflowing_sum_does_not_break_the_scheduler(pipeline: Pipeline) -> None:
    calculated(pipeline, "ltv", "sum")
    audience(pipeline, "Recent buyers", {"event": {"name": "purchase", "within": "1h"}})
    run_backfills(pipeline.db.conn(), lambda: NOW)
    pipeline.bulk(commerce("purchase", NOW, 1e308), commerce("purchase", NOW + 1, 1e308))
    pipeline.process(now=NOW + 1)
    mpid = pipeline.holder("customer_id", "c")
    tick(pipeline, NOW + 2 * HOUR)  # the audience's window ends: the profile is due
    assert values_ok(current_values(pipeline.db.conn(), pipeline.workspace_id, mpid, NOW + 2 * HOUR))


def values_ok(found: dict[str, Any]) -> bool:
    return all(v is None or isinstance(v, str) for v in found.values())


# --- Finding 3: the estimate misses device-only criteria and still says exact ---------------------------------


def test_the_estimate_of_a_device_criterion_counts_profiles(pipeline: Pipeline) -> None:
    calculated(pipeline, "purchases", "count", attribute=None)
    run_backfills(pipeline.db.conn(), lambda: NOW)
    batch = commerce("purchase", NOW, 1)
    batch["device_info"] = {"platform": "iOS"}
    pipeline.bulk(batch)
    pipeline.process(now=NOW)
    definition = parse_audience({"device": {"field": "platform", "operator": "equals", "value": "ios"}})
    found = estimate(pipeline.db.conn(), pipeline.workspace_id, definition, NOW)
    assert (found.size, found.exact) == (1, True) or not found.exact


def a_spender(pipeline: Pipeline) -> tuple[str, str]:
    """A calculated attribute `ltv` (sum of purchases), an audience `Spenders` (ltv > 10) and one profile in it;
    the attribute's and the audience's ids."""
    ltv = calculated(pipeline, "ltv", "sum")
    spenders = audience(pipeline, "Spenders", {"calculated_attribute": {"name": "ltv", "operator": "greater_than",
                                                                         "value": 10}})
    run_backfills(pipeline.db.conn(), lambda: NOW)
    pipeline.bulk(commerce("purchase", NOW, 20))
    pipeline.process(now=NOW)
    return ltv, spenders


# --- Finding 4: re-activating a calculated attribute makes the audiences that read it flap ---------------------


def test_reactivating_a_calculated_attribute_keeps_dependent_members(pipeline: Pipeline) -> None:
    ltv, spenders = a_spender(pipeline)
    mpid = pipeline.holder("customer_id", "c")
    assert set(members(pipeline, spenders)) == {mpid}
    service.activate_calculated(pipeline.db.conn(), pipeline.workspace_id, ltv, "test", NOW + 1)
    pipeline.bulk(commerce("purchase", NOW + 2, 1))
    pipeline.process(now=NOW + 2)
    run_backfills(pipeline.db.conn(), lambda: NOW + 3)
    assert current_values(pipeline.db.conn(), pipeline.workspace_id, mpid, NOW + 3) == {"ltv": "21"}
    assert [a for _, a, _ in changes(pipeline, spenders)] == ["enter"]


# --- Finding 5: deleting a calculated attribute an active audience reads leaves stale members -------------------


def test_deleting_a_calculated_attribute_an_audience_reads(pipeline: Pipeline) -> None:
    ltv, spenders = a_spender(pipeline)
    assert members(pipeline, spenders)
    try:
        service.delete_calculated(pipeline.db.conn(), pipeline.workspace_id, ltv)
    except Conflict:
        return  # refused while named: fine
    assert members(pipeline, spenders) == {}


# --- Finding 6: a merge records a second exit for audiences the merged profile already left --------------------


def test_a_merge_does_not_record_exits_already_recorded(pipeline: Pipeline) -> None:
    buyers = audience(pipeline, "Buyers", {"event": {"name": "purchase"}})
    audience(pipeline, "Keep live", {"event": {"name": "add_to_cart"}})  # some definition stays live
    run_backfills(pipeline.db.conn(), lambda: NOW)
    pipeline.bulk(commerce("purchase", NOW, 1, customer_id="x"), commerce("purchase", NOW, 1, email="y@e.com"))
    pipeline.process(now=NOW)
    service.deactivate_audience(pipeline.db.conn(), pipeline.workspace_id, buyers, NOW + 1)
    pipeline.bulk(commerce("add_to_cart", NOW + 2, customer_id="x", email="y@e.com"))
    pipeline.process(now=NOW + 2)
    assert pipeline.merges()
    exits: dict[int, int] = {}
    for mpid, action, _ in changes(pipeline, buyers):
        if action == "exit":
            exits[mpid] = exits.get(mpid, 0) + 1
    assert set(exits.values()) == {1}, changes(pipeline, buyers)


# --- Finding 7: `pattern` backtracked, O(len(pattern) * len(value)) per value (fixed: one scan per piece) -----


@given(st.text("ab*?", max_size=8), st.text("ab", max_size=12))
def test_glob_without_backtracking_agrees_with_fnmatch(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) is fnmatch.fnmatchcase(text, pattern)
