"""Cursor pagination: the cursor's own rules, and every admin list walked one row at a time on a real server."""

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import HTTPException

from kaon.admin.paging import Page, decode, encode
from support.server import KaonServer
from support.waiting import eventually

FILTERS = "0123456789abcdef"


def test_a_cursor_round_trips_its_position_filters_and_pins() -> None:
    cursor = encode((1764075000000, "in_x", None), FILTERS, {"since": 5, "until": None})
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode(cursor) == (FILTERS, [1764075000000, "in_x", None], {"since": 5, "until": None})


@pytest.mark.parametrize("cursor", [
    "", "abc", "-1", "!!!!", "a" * 5000, "é",
    base64.urlsafe_b64encode(b"not json").decode(),
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(json.dumps({"v": 2, "f": FILTERS, "k": [1], "p": {}}).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps({"v": 1, "f": FILTERS, "k": [[1]], "p": {}}).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps({"v": 1, "f": FILTERS, "k": [True], "p": {}}).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps({"v": 1, "f": FILTERS, "k": [2**64], "p": {}}).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps({"v": 1, "f": FILTERS, "k": [1], "p": {"since": "6h"}}).encode()).decode(),
])
def test_what_is_not_a_cursor_is_invalid_cursor(cursor: str) -> None:
    with pytest.raises(HTTPException) as refused:
        decode(cursor)
    assert refused.value.status_code == 400
    assert isinstance(refused.value.detail, dict) and refused.value.detail["code"] == "INVALID_CURSOR"


def test_a_position_of_another_shape_is_invalid_cursor() -> None:
    page = Page(limit=10, filters=FILTERS, position=[5, "x"], continued=True)
    assert page.after(int, str) == (5, "x")
    for types in ((int,), (str, str), (int, int)):
        with pytest.raises(HTTPException):
            page.after(*types)
    assert Page(limit=1, filters=FILTERS, position=[None], continued=True).after((str, type(None))) == (None,)


def test_pins_are_resolved_once_and_carried_by_the_cursor() -> None:
    first = Page(limit=1, filters=FILTERS)
    assert first.pin("since", lambda: 100) == 100
    rows, cursor = first.take([{"k": 1}, {"k": 2}], lambda row: (row["k"],))
    assert rows == [{"k": 1}] and cursor is not None
    made_for, position, pins = decode(cursor)
    later = Page(limit=1, filters=made_for, position=position, pins=pins, continued=True)
    assert later.pin("since", lambda: 999) == 100, "the next page re-resolved `since`"
    with pytest.raises(HTTPException):
        later.pin("until", lambda: 1)


def test_the_last_page_has_no_cursor() -> None:
    page = Page(limit=2, filters=FILTERS)
    assert page.take([1, 2], lambda n: (n,)) == ([1, 2], None)
    assert page.take([], lambda n: (n,)) == ([], None)
    assert page.take([1, 2, 3], lambda n: (n,))[1] is not None


# Every list of the admin API, walked on a server with a little of everything in it.
@pytest.fixture(scope="module")
def world(kaon_server: KaonServer) -> dict[str, Any]:
    server = kaon_server
    customers = [f"page-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for n, customer in enumerate(customers):
        body = {"environment": "development", "user_identities": {"customer_id": customer},
                "consent_state": {"gdpr": {"analytics": {"consented": True, "timestamp_unixtime_ms": 1000 + n},
                                           "ads": {"consented": False, "timestamp_unixtime_ms": 2000 + n}}},
                "events": [{"event_type": "custom_event", "data": {"event_name": f"Paged {i}",
                                                                   "custom_attributes": {f"a{i}": i}}}
                           for i in range(3)]}
        assert httpx.post(f"{server.url}/v2/events", json=body, headers=server.basic(), timeout=30).status_code == 202
    assert httpx.post(f"{server.url}/v2/events", content=b"{", headers=server.basic(), timeout=30).status_code == 400
    eventually(lambda: all(server.profile("customer_id", c) for c in customers), timeout=30, what="profiles")
    eventually(lambda: server.listed("/rejections", "rejections"), timeout=30, what="a rejection recorded")
    outputs = []
    for n in range(3):
        made = server.admin("POST", "/outputs", json={"name": f"hook-{n}-{uuid.uuid4().hex[:6]}",
                                                      "destination": "webhook",
                                                      "settings": {"base_url": "http://127.0.0.1:9/hook"},
                                                      "enabled": False})
        assert made.status_code == 201, made.text
        outputs.append(made.json()["id"])
        connected = server.admin("POST", "/connections", json={"input_id": server.input("server")["id"],
                                                               "output_id": made.json()["id"]})
        assert connected.status_code == 201, connected.text
    for n in range(3):
        plan = {"data_plan_id": f"paged_{n}_{uuid.uuid4().hex[:6]}", "data_plan_name": f"Paged {n}",
                "data_plan_versions": [{"version": 1, "activated_environment": "none", "version_document": {
                    "data_points": []}}]}
        assert server.admin("POST", "/plans", json=plan).status_code == 201
    mpid = server.profile("customer_id", customers[0])
    assert mpid is not None
    return {"mpid": mpid["mpid"], "output": outputs[0]}


LISTS = [
    ("/events", "events"), ("/inputs", "inputs"), ("/outputs", "outputs"), ("/connections", "connections"),
    ("/directory", "destinations"), ("/plans", "plans"), ("/catalog", "data_points"), ("/stats", "stats"),
    ("/stats/consent", "unknown_purposes"), ("/rejections", "rejections"), ("/quarantine", "entries"),
    ("/alerts", "alerts"), ("/profiles", "profiles"), ("/profiles/{mpid}/events", "events"),
    ("/profiles/{mpid}/merges", "merges"), ("/profiles/{mpid}/consent", "history"),
    ("/outputs/{output}/status", "hours"),
]


def walk(server: KaonServer, path: str, key: str, limit: int) -> list[str]:
    return [json.dumps(item, sort_keys=True) for item in server.listed(path, key, limit=limit)]


@pytest.mark.parametrize(("path", "key"), LISTS)
def test_every_list_pages_one_row_at_a_time_to_the_same_rows(kaon_server: KaonServer, world: dict[str, Any],
                                                             path: str, key: str) -> None:
    path = path.format(**world)
    whole = walk(kaon_server, path, key, 1000)
    assert walk(kaon_server, path, key, 1) == whole
    assert len(set(whole)) == len(whole), "a row appeared twice"
    if path in ("/events", "/inputs", "/outputs", "/connections", "/directory", "/plans", "/catalog", "/profiles"):
        assert len(whole) >= 2, f"{path} has too few rows to page"


@pytest.mark.parametrize(("path", "key"), LISTS)
def test_every_list_refuses_a_cursor_that_does_not_parse(kaon_server: KaonServer, world: dict[str, Any],
                                                         path: str, key: str) -> None:
    response = kaon_server.admin("GET", path.format(**world), params={"cursor": "not-a-cursor"})
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "INVALID_CURSOR" and "`cursor`" in error["message"]


def test_a_cursor_is_refused_with_other_filters_or_on_another_list(kaon_server: KaonServer,
                                                                   world: dict[str, Any]) -> None:
    server = kaon_server
    first = server.admin("GET", "/events", params={"limit": 1, "event_name": "Paged 1"}).json()
    cursor = first["next_cursor"]
    assert cursor
    ok = server.admin("GET", "/events", params={"limit": 5, "event_name": "Paged 1", "cursor": cursor})
    assert ok.status_code == 200 and {e["event_name"] for e in ok.json()["events"]} == {"Paged 1"}
    for path, params in (("/events", {"event_name": "Paged 2"}), ("/events", {}),
                         (f"/profiles/{world['mpid']}/events", {"event_name": "Paged 1"}),
                         ("/rejections", {})):
        refused = server.admin("GET", path, params={**params, "cursor": cursor})
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json()["errors"][0]["code"] == "INVALID_CURSOR"


def test_limit_is_bounded_on_every_list(kaon_server: KaonServer, world: dict[str, Any]) -> None:
    for path, _ in LISTS:
        for limit in (0, 1001, "x"):
            response = kaon_server.admin("GET", path.format(**world), params={"limit": limit})
            assert response.status_code == 400, (path, limit, response.text)
            assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"
