"""Unknown query parameters: 400 UNKNOWN_PARAMETER naming each one, on every Kaon route; vendor routes exempt."""

import httpx
import pytest

from support.server import KaonServer


@pytest.mark.parametrize(("path", "params", "unknown"), [
    ("/events", {"event_nme": "Purchase"}, ["event_nme"]),
    ("/events", {"limit": 5, "offset": 10, "sort": "asc"}, ["offset", "sort"]),
    ("/inputs", {"name": "server"}, ["name"]),
    ("/stats", {"from": "6h"}, ["from"]),
    ("/health", {"verbose": "1"}, ["verbose"]),
    ("/profiles", {"email": "a@example.com"}, ["email"]),
    ("/catalog", {"offset": "0"}, ["offset"]),
])
def test_an_unknown_parameter_is_refused_by_name(kaon_server: KaonServer, path: str, params: dict[str, object],
                                                 unknown: list[str]) -> None:
    headers = {} if path == "/health" else {"Authorization": f"Bearer {kaon_server.admin_token}"}
    response = httpx.get(f"{kaon_server.url}/api/v1{path}", params=params, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [e["code"] for e in errors] == ["UNKNOWN_PARAMETER"] * len(unknown)
    for error, name in zip(errors, unknown, strict=True):
        assert f"`{name}`" in error["message"]


def test_the_message_lists_what_the_route_takes(kaon_server: KaonServer) -> None:
    """Its own parameters and those of its dependencies (paging's `limit` and `cursor`, the event filters)."""
    message = kaon_server.admin("GET", "/events", params={"name": "x"}).json()["errors"][0]["message"]
    for name in ("limit", "cursor", "event_name", "event_type", "mpid", "input_id", "since", "until"):
        assert f"`{name}`" in message


def test_declared_parameters_are_accepted(kaon_server: KaonServer) -> None:
    assert kaon_server.admin("GET", "/events", params={"limit": 1, "event_name": "x", "since": "1h"}).status_code == 200
    assert kaon_server.admin("GET", "/catalog", params={"type": "custom_event"}).status_code == 200  # an alias
    assert kaon_server.admin("DELETE", "/outputs/out_missing", params={"force": "true"}).status_code == 404


def test_vendor_routes_keep_their_own_rules(kaon_server: KaonServer) -> None:
    """OpenDSR's discovery ignores what it does not know, as the vendor's does."""
    response = httpx.get(f"{kaon_server.url}/opendsr/v3/discovery", params={"x": "1"}, timeout=30)
    assert response.status_code == 200

