"""Profiles through a real `kaon serve`: the admin view, lookups, the mParticle Profile API, merges made by
batches and their undo, and the identity settings.

Batches go in through `/v2/events` (Basic auth, no mpid: Kaon resolves them) and are processed after the 202,
so every read waits with `eventually`.
"""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import KaonServer
from support.waiting import eventually


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def tag() -> str:
    return uuid.uuid4().hex[:10]


def upload(server: KaonServer, batch: dict[str, Any]) -> None:
    response = httpx.post(f"{server.url}/v2/events", json={"environment": "production", **batch},
                          headers=server.basic(), timeout=30)
    assert response.status_code == 202, response.text


def custom(name: str) -> dict[str, Any]:
    return {"event_type": "custom_event",
            "data": {"event_name": name, "custom_event_type": "other", "source_message_id": str(uuid.uuid4())}}


def mpid_of(server: KaonServer, name: str) -> str:
    """The mpid the event `name` was stored with, once stored."""
    def probe() -> str:
        found = server.events_named(name)
        return str(found[0]["mpid"]) if found else ""
    mpid = eventually(probe, timeout=20, what=f"event {name!r} stored")
    return mpid


def view(server: KaonServer, mpid: str) -> dict[str, Any]:
    response = server.admin("GET", f"/profiles/{mpid}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def lookup(server: KaonServer, identity_type: str, value: str) -> dict[str, Any] | None:
    """The profile holding the identity (`GET /profiles?identity_type=&value=`), or None."""
    return server.profile(identity_type, value)


def event_names(server: KaonServer, mpid: str) -> set[str]:
    response = server.admin("GET", f"/profiles/{mpid}/events")
    assert response.status_code == 200, response.text
    return {e["event_name"] for e in response.json()["events"] if e["event_name"]}


def profile_api(server: KaonServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{server.url}/userprofile/v1/{path}", timeout=30,
                         headers={"Authorization": f"Bearer {server.admin_token}"}, **kwargs)


def identify(server: KaonServer, **known: str) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/v1/identify", headers=server.basic(), timeout=30,
                          json={"environment": "production", "known_identities": known})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def user(kaon_server: KaonServer) -> Iterator[dict[str, Any]]:
    """One profile built from two batches: identities, attributes (set, changed, deleted) and an opt-out."""
    server, t = kaon_server, tag()
    base = now_ms() - 10_000
    upload(server, {
        "user_identities": {"customer_id": f"cust-{t}", "email": f"Ann-{t}@Example.com"},
        "device_info": {"platform": "iOS", "ios_idfv": f"idfv-{t}", "android_uuid": f"auuid-{t}"},
        "mp_deviceid": f"das-{t}",
        "user_attributes": {"tier": "gold", "age": 42, "tags": ["zeta", "alpha"], "gone": "soon", "later": "x"},
        "events": [custom(f"first-{t}")],
    })
    mpid = mpid_of(server, f"first-{t}")
    upload(server, {
        "user_identities": {"customerid": f"cust-{t}"},
        "deleted_user_attributes": ["gone"],
        "events": [
            custom(f"second-{t}"),
            {"event_type": "user_attribute_change", "data": {
                "user_attribute_name": "tier", "new": "platinum", "old": "gold", "deleted": False,
                "is_new_attribute": False, "timestamp_unixtime_ms": now_ms() + 5_000}},
            {"event_type": "user_attribute_change", "data": {
                "user_attribute_name": "later", "new": None, "old": "x", "deleted": True,
                "is_new_attribute": False, "timestamp_unixtime_ms": now_ms() + 5_000}},
            {"event_type": "opt_out", "data": {"is_opted_out": True, "timestamp_unixtime_ms": base + 9_000}},
        ],
    })
    assert mpid_of(server, f"second-{t}") == mpid
    yield {"tag": t, "mpid": mpid}


def test_profile_view(kaon_server: KaonServer, user: dict[str, Any]) -> None:
    server, t, mpid = kaon_server, user["tag"], user["mpid"]
    profile = eventually(lambda: (p := view(server, mpid))["is_opted_out"] and p, timeout=20,
                         what="the second batch applied")
    assert profile["mpid"] == mpid
    assert sorted((i["type"], i["value"]) for i in profile["user_identities"]) == [
        ("customer_id", f"cust-{t}"), ("email", f"ann-{t}@example.com")]
    assert sorted((i["type"], i["value"]) for i in profile["device_identities"]) == [
        ("android_uuid", f"auuid-{t}"), ("device_application_stamp", f"das-{t}"), ("ios_idfv", f"idfv-{t}")]
    assert profile["user_attributes"] == {"tier": "platinum", "age": 42, "tags": ["zeta", "alpha"]}
    assert profile["is_opted_out"] is True
    assert {f"first-{t}", f"second-{t}"} <= event_names(server, mpid)


def test_lookup_by_identity(kaon_server: KaonServer, user: dict[str, Any]) -> None:
    server, t, mpid = kaon_server, user["tag"], user["mpid"]
    for identity_type, value in [("customer_id", f"cust-{t}"), ("customerid", f"cust-{t}"),
                                 ("email", f"ANN-{t}@example.COM"), ("ios_idfv", f"idfv-{t}"),
                                 ("device_application_stamp", f"das-{t}")]:
        found = lookup(server, identity_type, value)
        assert found is not None and found["mpid"] == mpid, identity_type
    assert lookup(server, "customer_id", f"CUST-{t}") is None  # customer ids are case-sensitive


def test_unknown_profiles_are_404_and_unknown_identities_none(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    for path in ("/profiles/123456789", "/profiles/123456789/events", "/profiles/123456789/merges"):
        response = server.admin("GET", path)
        assert response.status_code == 404, path
        assert response.json()["errors"][0]["code"] == "NOT_FOUND"
    assert server.admin("POST", "/profiles/123456789/unmerge", json={}).status_code == 404
    assert lookup(server, "email", f"nobody-{t}@x.io") is None
    assert lookup(server, "customerid", f"nobody-{t}") is None
    assert server.admin("GET", "/profiles/99999999999999999999").status_code in (404, 422)


def test_profile_api_by_mpid_with_fields(kaon_server: KaonServer, user: dict[str, Any]) -> None:
    server, t, mpid = kaon_server, user["tag"], user["mpid"]
    ws = server.init["workspace_id"]
    eventually(lambda: view(server, mpid)["is_opted_out"], timeout=20, what="the second batch applied")
    full = profile_api(server, "GET", f"org/acct/{ws}/{mpid}",
                       params={"fields": "user_identities,device_identities,user_attributes,audience_memberships"})
    assert full.status_code == 200, full.text
    body = full.json()
    assert body["mpid"] == int(mpid)
    assert body["is_opted_out"] is True
    assert sorted((i["type"], i["value"], i["encoding"]) for i in body["user_identities"]) == [
        ("customer_id", f"cust-{t}", "none"), ("email", f"ann-{t}@example.com", "none")]
    # Profile API spellings of device identities; the device stamp is not one of them.
    assert sorted((i["type"], i["value"]) for i in body["device_identities"]) == [
        ("android_id", f"auuid-{t}"), ("ios_vendor_id", f"idfv-{t}")]
    # Values are strings, lists sorted.
    assert body["user_attributes"] == {"tier": "platinum", "age": "42", "tags": ["alpha", "zeta"]}
    assert body["audience_memberships"] == []

    only = profile_api(server, "POST", f"org/acct/{ws}/{mpid}", params={"fields": "user_identities"}).json()
    assert "user_identities" in only
    assert not {"device_identities", "user_attributes", "audience_memberships"} & set(only)

    bad = profile_api(server, "GET", f"org/acct/{ws}/{mpid}", params={"fields": "user_identities,shoe_size"})
    assert bad.status_code == 400 and "shoe_size" in bad.text


def test_profile_api_resolve(kaon_server: KaonServer, user: dict[str, Any]) -> None:
    server, t, mpid = kaon_server, user["tag"], user["mpid"]
    ws = server.init["workspace_id"]
    for identity_type in ("customer_id", "customerid"):
        response = profile_api(server, "POST", f"resolve/org/acct/{ws}", params={"fields": "user_identities"},
                               json={"environment_type": "production",
                                     "identity": {"type": identity_type, "value": f"cust-{t}"}})
        assert response.status_code == 200, response.text
        assert response.json()["mpid"] == int(mpid)
        assert "user_attributes" not in response.json()
    by_email = profile_api(server, "POST", f"resolve/org/acct/{ws}",
                           json={"identity": {"type": "email", "value": f"ann-{t}@example.com"}})
    assert by_email.json()["mpid"] == int(mpid)
    missing = profile_api(server, "POST", f"resolve/org/acct/{ws}",
                          json={"identity": {"type": "customer_id", "value": f"nobody-{t}"}})
    assert missing.status_code == 404
    bad_fields = profile_api(server, "POST", f"resolve/org/acct/{ws}", params={"fields": "shoe_size"},
                             json={"identity": {"type": "customer_id", "value": f"nobody-{t}"}})
    assert bad_fields.status_code == 400 and "shoe_size" in bad_fields.text
    no_value = profile_api(server, "POST", f"resolve/org/acct/{ws}", json={"identity": {"type": "email"}})
    assert no_value.status_code == 400


def test_profile_api_workspace_mismatch_is_404(kaon_server: KaonServer, user: dict[str, Any]) -> None:
    server, mpid = kaon_server, user["mpid"]
    assert profile_api(server, "GET", f"org/acct/ws_not_mine/{mpid}").status_code == 404
    response = profile_api(server, "POST", "resolve/org/acct/ws_not_mine",
                           json={"identity": {"type": "customer_id", "value": f"cust-{user['tag']}"}})
    assert response.status_code == 404
    unauthenticated = httpx.get(f"{server.url}/userprofile/v1/o/a/{server.init['workspace_id']}/{mpid}", timeout=30)
    assert unauthenticated.status_code == 401
    assert profile_api(server, "GET", f"org/acct/{server.init['workspace_id']}/123456789").status_code == 404


def test_two_batches_merged_by_a_third_and_unmerged(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    upload(server, {"user_identities": {"email": f"e-{t}@x.io"}, "mp_deviceid": f"d1-{t}",
                    "user_attributes": {"source": "email"}, "events": [custom(f"b1-{t}")]})
    p1 = mpid_of(server, f"b1-{t}")
    upload(server, {"user_identities": {"customer_id": f"c-{t}"}, "device_info": {"ios_idfv": f"d2-{t}"},
                    "events": [custom(f"b2-{t}")]})
    p2 = mpid_of(server, f"b2-{t}")
    assert p1 != p2
    upload(server, {"mp_deviceid": f"d1-{t}", "device_info": {"ios_idfv": f"d2-{t}"}, "events": [custom(f"b3-{t}")]})
    survivor = mpid_of(server, f"b3-{t}")
    assert survivor == p2  # the IDFV outranks the device stamp: its profile survives

    merged = view(server, p1)
    assert merged["mpid"] == p2 and merged["requested_mpid"] == p1  # the merged mpid follows to the survivor
    assert {(i["type"], i["value"]) for i in merged["user_identities"]} == {
        ("customer_id", f"c-{t}"), ("email", f"e-{t}@x.io")}
    assert (lookup(server, "email", f"e-{t}@x.io") or {}).get("mpid") == p2
    assert event_names(server, p2) == {f"b1-{t}", f"b2-{t}", f"b3-{t}"}
    merges = server.admin("GET", f"/profiles/{p2}/merges").json()["merges"]
    assert len(merges) == 1
    merge = merges[0]
    assert (merge["survivor_mpid"], merge["merged_mpid"], merge["undone_unixtime_ms"]) == (p2, p1, None)
    assert merge["reason"] and merge["actor"] == "pipeline"
    assert server.admin("GET", f"/profiles/{p1}/merges").json()["merges"] == merges

    undo = server.admin("POST", f"/profiles/{p2}/unmerge", json={"merge_id": merge["merge_id"]})
    assert undo.status_code == 200, undo.text
    assert sorted(undo.json()["restored"]) == sorted([p1, p2])
    first, second = view(server, p1), view(server, p2)
    assert first["mpid"] == p1
    assert {(i["type"], i["value"]) for i in first["user_identities"] + first["device_identities"]} == {
        ("email", f"e-{t}@x.io"), ("device_application_stamp", f"d1-{t}")}
    assert first["user_attributes"] == {"source": "email"}
    assert {(i["type"], i["value"]) for i in second["user_identities"] + second["device_identities"]} == {
        ("customer_id", f"c-{t}"), ("ios_idfv", f"d2-{t}")}
    assert second["user_attributes"] == {}
    assert event_names(server, p1) == {f"b1-{t}"}
    assert event_names(server, p2) == {f"b2-{t}", f"b3-{t}"}
    assert (lookup(server, "email", f"e-{t}@x.io") or {}).get("mpid") == p1
    listed = server.admin("GET", f"/profiles/{p2}/merges").json()["merges"]
    assert listed[0]["undone_unixtime_ms"] is not None and listed[0]["undone_by"] == "admin"
    # A second undo is refused; so is an undo with no merge left.
    again = server.admin("POST", f"/profiles/{p2}/unmerge", json={"merge_id": merge["merge_id"]})
    assert again.status_code == 409
    assert server.admin("POST", f"/profiles/{p2}/unmerge", json={}).status_code == 404


# Settings last: they change the workspace's behaviour for everything after them.

def test_identity_settings_validation_and_limits(kaon_server: KaonServer) -> None:
    server, t = kaon_server, tag()
    try:
        bad = server.admin("PUT", "/settings/identity", json={"strategy": "psychic"})
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["code"] == "INVALID_SETTINGS"
        assert "strategy" in bad.json()["errors"][0]["message"]
        assert "psychic" in bad.json()["errors"][0]["message"]
        for body in ({"limits": {"email": 0}}, {"unknown_setting": 1}, {"priority": "customer_id"}):
            assert server.admin("PUT", "/settings/identity", json=body).status_code == 400, body
        assert server.admin("GET", "/settings/identity").json()["strategy"] == "unify"

        put = server.admin("PUT", "/settings/identity", json={"limits": {"email": 1}})
        assert put.status_code == 200, put.text
        assert server.admin("GET", "/settings/identity").json()["limits"] == {"email": 1}
        mpid = identify(server, customerid=f"lim-{t}", email=f"one-{t}@x.io")["mpid"]
        assert identify(server, customerid=f"lim-{t}", email=f"two-{t}@x.io")["mpid"] == mpid
        upload(server, {"user_identities": {"customer_id": f"lim-{t}", "email": f"three-{t}@x.io"},
                        "events": [custom(f"lim-{t}")]})
        assert mpid_of(server, f"lim-{t}") == mpid
        emails = [i["value"] for i in view(server, mpid)["user_identities"] if i["type"] == "email"]
        assert emails == [f"one-{t}@x.io"]
        assert lookup(server, "email", f"two-{t}@x.io") is None
        assert lookup(server, "email", f"three-{t}@x.io") is None
    finally:
        assert server.admin("PUT", "/settings/identity", json={}).status_code == 200
    # Back to defaults: no limit.
    identify(server, customerid=f"lim-{t}", email=f"two-{t}@x.io")
    assert (lookup(server, "email", f"two-{t}@x.io") or {}).get("mpid") == mpid
