"""Identity types the admin API takes: every known spelling accepted, an unknown one 400 UNKNOWN_IDENTITY_TYPE."""

import uuid

import httpx
import pytest
from fastapi import HTTPException

from kaon.admin.identity_types import canonical_type
from kaon.model.identities import DEVICE_IDENTITY_TYPES, IDSYNC_TO_CANONICAL, USER_IDENTITY_TYPES
from support.server import KaonServer
from support.waiting import eventually


def test_every_known_spelling_maps_to_its_canonical_name() -> None:
    for name in (*USER_IDENTITY_TYPES, *DEVICE_IDENTITY_TYPES):
        assert canonical_type(name, "x") == name
    for name, canonical in IDSYNC_TO_CANONICAL.items():
        assert canonical_type(name, "x") == canonical
    assert canonical_type("customerid", "x") == "customer_id"
    assert canonical_type("ios_idfa", "x") == "ios_advertising_id"


@pytest.mark.parametrize("name", ["customerId", "e-mail", "mpid", "", "CUSTOMER_ID", "other_id_11"])
def test_an_unknown_type_is_refused_by_name(name: str) -> None:
    with pytest.raises(HTTPException) as refused:
        canonical_type(name, "identity_type")
    assert refused.value.status_code == 400
    detail = refused.value.detail
    assert isinstance(detail, dict)
    assert detail["code"] == "UNKNOWN_IDENTITY_TYPE" and repr(name) in detail["message"]
    assert "`identity_type`" in detail["message"]


def test_profile_lookup_by_any_spelling_and_an_unknown_type_refused(kaon_server: KaonServer) -> None:
    server = kaon_server
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    body = {"environment": "development", "user_identities": {"customer_id": customer},
            "events": [{"event_type": "custom_event", "data": {"event_name": "Hello"}}]}
    assert httpx.post(f"{server.url}/v2/events", json=body, headers=server.basic(), timeout=30).status_code == 202
    found = eventually(lambda: server.profile("customer_id", customer), timeout=30, what="the profile")
    assert server.profile("customerid", customer) == found
    missing = server.admin("GET", "/profiles", params={"identity_type": "customer_id", "value": "nobody"})
    assert missing.status_code == 200 and missing.json() == {"profiles": [], "next_cursor": None}
    refused = server.admin("GET", "/profiles", params={"identity_type": "customerId", "value": customer})
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["code"] == "UNKNOWN_IDENTITY_TYPE" and "'customerId'" in error["message"]


def test_profile_api_resolve_refuses_an_unknown_type(kaon_server: KaonServer) -> None:
    workspace = kaon_server.init["workspace_id"]
    response = httpx.post(f"{kaon_server.url}/userprofile/v1/resolve/org/acct/{workspace}", timeout=30,
                          headers={"Authorization": f"Bearer {kaon_server.admin_token}"},
                          json={"identity": {"type": "customer", "value": "x"}})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "UNKNOWN_IDENTITY_TYPE"


def test_identity_settings_take_known_types_in_any_spelling(kaon_server: KaonServer) -> None:
    saved = kaon_server.admin("PUT", "/settings/identity", json={"unique_types": ["customerid"],
                                                                 "limits": {"email": 3, "ios_idfa": 1}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["unique_types"] == ["customer_id"]
    assert saved.json()["limits"] == {"email": 3, "ios_advertising_id": 1}
    for body, where in (({"priority": ["customer_id", "emial"]}, "priority[1]"),
                        ({"login_types": ["user"]}, "login_types[0]"), ({"limits": {"phone": 2}}, "limits.phone")):
        refused = kaon_server.admin("PUT", "/settings/identity", json=body)
        assert refused.status_code == 400, refused.text
        [error] = refused.json()["errors"]
        assert error["code"] == "UNKNOWN_IDENTITY_TYPE" and f"`{where}`" in error["message"]
    assert kaon_server.admin("PUT", "/settings/identity", json={}).status_code == 200
