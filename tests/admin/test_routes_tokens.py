"""Admin tokens through a real `kaon serve`: scopes walked over the route table, expiry, revocation, last use,
and what answers without a token (docs/security.md, "The admin surface")."""

import re
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from kaon.admin.app import create_admin_app
from kaon.admin.guard import is_public
from kaon.store.db import Database, DatabaseUrl
from support.server import KaonServer, kaon

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# POST routes that only read (they take `Reader`): any token may call them.
READING_POSTS = {"/api/v1/plans/validate", "/api/v1/audiences/estimate",
                 "/userprofile/v1/resolve/{org_id}/{account_id}/{workspace_id}",
                 "/userprofile/v1/{org_id}/{account_id}/{workspace_id}/{mpid}"}
# Routes with credentials of their own (OpenDSR, docs/governance): not admin tokens.
OWN_CREDENTIALS = re.compile(r"^/opendsr/")


def routes() -> list[tuple[str, str]]:
    """Every (method, path) of the admin app's route table (as its OpenAPI document lists them)."""
    app = create_admin_app(Database(DatabaseUrl.parse("sqlite:///:memory:")))
    found = [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item]
    return [(m, p) for m, p in found if not OWN_CREDENTIALS.match(p)]


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    started = KaonServer(tmp_path_factory.mktemp("tokens")).start()
    yield started
    started.stop()


def create(server: KaonServer, **body: object) -> dict[str, object]:
    answer = server.admin("POST", "/tokens", json={"name": "t", **body})
    assert answer.status_code == 201, answer.text
    made: dict[str, object] = answer.json()
    return made


def call(server: KaonServer, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{server.url}{filled(path)}", headers=headers, timeout=30,
                         json={} if method in STATE_CHANGING else None)


def test_a_read_token_is_refused_on_every_state_changing_route(server: KaonServer) -> None:
    read = str(create(server, scope="read")["token"])
    walked = [(m, p) for m, p in routes() if m in STATE_CHANGING and p not in READING_POSTS]
    assert len(walked) >= 20  # the walk finds the routes
    for method, path in walked:
        answer = call(server, method, path, read)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["errors"][0]["code"] == "READ_ONLY_TOKEN", (method, path)


def test_a_read_token_reads(server: KaonServer) -> None:
    read = str(create(server, scope="read")["token"])
    for method, path in routes():
        if method == "GET" and "{" not in path and not is_public(path):
            answer = call(server, method, path, read)
            assert answer.status_code not in (401, 403), (path, answer.text)
    assert call(server, "POST", "/api/v1/plans/validate", read).status_code == 400  # read, then refused the body


def test_without_a_token_only_the_public_routes_answer(server: KaonServer) -> None:
    public = [p for m, p in routes() if is_public(p)]
    assert sorted(public) == ["/api/v1/directory", "/api/v1/health"]  # docs and openapi.json are not listed
    for path in ("/api/v1/health", "/api/v1/docs", "/api/v1/openapi.json", "/api/v1/directory"):
        assert httpx.get(f"{server.url}{path}", timeout=30).status_code == 200, path
    for method, path in routes():
        if not is_public(path):
            answer = call(server, method, path, None)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_revoked_and_expired_tokens_answer_401(server: KaonServer) -> None:
    made = create(server, scope="write")
    assert call(server, "GET", "/api/v1/inputs", str(made["token"])).status_code == 200
    revoked = server.admin("DELETE", f"/tokens/{made['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_unixtime_ms"] is not None
    assert call(server, "GET", "/api/v1/inputs", str(made["token"])).status_code == 401
    assert server.admin("DELETE", "/tokens/0123456789abcdef").status_code == 404
    expiring = create(server, expires_in_days=1)
    db = sqlite3.connect(server.data_dir / "kaon.db")
    with db:  # a day later: the expiry is in the past
        db.execute("UPDATE admin_tokens SET expires_ms = 1 WHERE substr(token_hash, 1, 16) = ?", (expiring["id"],))
    db.close()
    assert call(server, "GET", "/api/v1/inputs", str(expiring["token"])).status_code == 401


def test_tokens_are_listed_without_secrets_with_last_use(server: KaonServer) -> None:
    made = create(server, name="listed")
    assert call(server, "GET", "/api/v1/inputs", str(made["token"])).status_code == 200
    listed = {t["id"]: t for t in server.listed("/tokens", "tokens")}
    assert listed[made["id"]]["last_used_unixtime_ms"] is not None
    assert listed[made["id"]]["scope"] == "read"
    assert all("token" not in t for t in listed.values())
    assert any(t["name"] == "init" and t["scope"] == "write" for t in listed.values())  # kaon init's token


def test_the_cli_creates_lists_and_revokes(server: KaonServer) -> None:
    import json
    done = kaon("tokens", "create", "--name", "ops", "--scope", "write", "--operator", "--json",
                data_dir=server.data_dir)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["operator"] is True and made["token"].startswith("kaon_")
    assert call(server, "GET", "/api/v1/inputs", made["token"]).status_code == 200
    listed = json.loads(kaon("tokens", "list", "--json", data_dir=server.data_dir).stdout)
    assert made["id"] in {t["id"] for t in listed} and all("token" not in t for t in listed)
    assert kaon("tokens", "revoke", made["id"], data_dir=server.data_dir).returncode == 0
    assert call(server, "GET", "/api/v1/inputs", made["token"]).status_code == 401
