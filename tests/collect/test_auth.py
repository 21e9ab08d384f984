"""Input authentication: Basic parsing and the cached key table over a real config store."""

import base64

import pytest

from kaon.collect.auth import Authenticator, parse_basic
from kaon.collect.errors import CollectError
from kaon.store.config import ConfigStore
from kaon.store.db import Database


def basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


def test_parse_basic_absent_is_none() -> None:
    assert parse_basic(None) is None


@pytest.mark.parametrize(("value", "expected"), [
    (basic("key:secret"), ("key", "secret")),
    (b"basic " + base64.b64encode(b"key:secret"), ("key", "secret")),  # scheme is case-insensitive
    (basic("key:"), ("key", "")),
    (basic("key"), ("key", "")),
    (basic("key:se:cret"), ("key", "se:cret")),  # only the first colon separates
])
def test_parse_basic_values(value: bytes, expected: tuple[str, str]) -> None:
    assert parse_basic(value) == expected


@pytest.mark.parametrize("value", [
    b"Bearer abc",
    b"Basic not*base64",
    b"Basic " + base64.b64encode(b"\xff\xfe:x"),
    b"Digest " + base64.b64encode(b"key:secret"),
])
def test_parse_basic_refuses_other_schemes_and_garbage(value: bytes) -> None:
    with pytest.raises(CollectError) as raised:
        parse_basic(value)
    assert raised.value.status == 401
    assert raised.value.code == "UNAUTHORIZED"
    assert "Basic" in raised.value.message


@pytest.fixture
def setup(database: Database) -> tuple[Database, ConfigStore, str]:
    db = database
    store = ConfigStore(db.conn())
    workspace = store.create_workspace("w")
    return db, store, workspace.id


def test_key_and_secret(setup: tuple[Database, ConfigStore, str]) -> None:
    db, store, ws = setup
    made = store.create_input(ws, "srv", "server")
    assert made.secret
    auth = Authenticator(db)
    info = auth.basic((made.input.key, made.secret))
    assert (info.id, info.workspace_id) == (made.input.id, ws)
    with pytest.raises(CollectError, match="Wrong API secret"):
        auth.basic((made.input.key, made.secret + "x"))
    with pytest.raises(CollectError, match="Unknown API key"):
        auth.basic(("nope", made.secret))
    with pytest.raises(CollectError, match="Missing Authorization"):
        auth.basic(None)


def test_write_key_rules(setup: tuple[Database, ConfigStore, str]) -> None:
    db, store, ws = setup
    server = store.create_input(ws, "srv", "server")
    web = store.create_input(ws, "web", "web")
    auth = Authenticator(db)
    assert auth.write_key((web.input.key, ""), None).id == web.input.id
    assert auth.write_key(None, web.input.key).id == web.input.id
    assert server.secret is not None
    assert auth.write_key((server.input.key, server.secret), None).id == server.input.id
    with pytest.raises(CollectError) as raised:
        auth.write_key((server.input.key, ""), None)
    assert (raised.value.status, raised.value.code) == (401, "UNAUTHORIZED")
    with pytest.raises(CollectError):
        auth.write_key(None, server.input.key)
    with pytest.raises(CollectError, match="Missing write key"):
        auth.write_key(None, None)


def test_refresh_sees_disable_rotate_and_new_inputs(setup: tuple[Database, ConfigStore, str]) -> None:
    db, store, ws = setup
    made = store.create_input(ws, "srv", "server")
    assert made.secret is not None
    auth = Authenticator(db)
    later = store.create_input(ws, "later", "web")
    store.set_enabled(made.input.id, False)
    # Cached until refresh: the hot path does no database lookup.
    assert auth.basic((made.input.key, made.secret)).enabled
    auth.refresh()
    with pytest.raises(CollectError, match="disabled"):
        auth.basic((made.input.key, made.secret))
    assert auth.key_only(later.input.key).id == later.input.id
    store.set_enabled(made.input.id, True)
    rotated = store.rotate_secret(made.input.id)
    assert rotated.secret is not None
    auth.refresh()
    with pytest.raises(CollectError, match="Wrong API secret"):
        auth.basic((made.input.key, made.secret))
    assert auth.basic((made.input.key, rotated.secret)).id == made.input.id


def test_default_rate_limit_applies_only_when_input_sets_none(setup: tuple[Database, ConfigStore, str]) -> None:
    db, store, ws = setup
    plain = store.create_input(ws, "plain", "web")
    limited = store.create_input(ws, "limited", "web", rate_limit_rps=7)
    auth = Authenticator(db, default_rate_limit=3)
    assert auth.key_only(plain.input.key).rate_limit_rps == 3
    assert auth.key_only(limited.input.key).rate_limit_rps == 7
