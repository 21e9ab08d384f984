"""Output secrets: sealing round trip, the placeholder in a PATCH, and re-entering secrets when the target moves."""

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kaon.destinations.registry import destination
from kaon.store import output_secrets as secrets
from kaon.store.db import Database, DatabaseUrl
from kaon.store.outputs import OutputStore, enabled_outputs
from kaon.store.sealing import Sealer

WEBHOOK = destination("webhook")
STORED = {"base_url": "https://a.example/hook", "signing_secret": "s1", "headers": {"Authorization": "t", "X": "y"}}


def test_sealed_values_round_trip_and_plaintext_reads_as_is() -> None:
    sealer = Sealer(Fernet.generate_key())
    sealed = secrets.seal(WEBHOOK, STORED, sealer)
    assert sealed["base_url"] == STORED["base_url"] and secrets.is_sealed(WEBHOOK, sealed)
    assert sealed["signing_secret"].startswith(secrets.PREFIX)
    assert all(v.startswith(secrets.PREFIX) for v in sealed["headers"].values())
    assert secrets.unseal(WEBHOOK, sealed, sealer) == STORED
    assert not secrets.is_sealed(WEBHOOK, STORED) and secrets.unseal(WEBHOOK, STORED, sealer) == STORED
    assert secrets.seal(WEBHOOK, sealed, sealer) == sealed  # sealing twice changes nothing
    with pytest.raises(ValueError, match="cannot be unsealed"):
        secrets.unseal(WEBHOOK, sealed, Sealer(Fernet.generate_key()))


def test_the_placeholder_keeps_the_stored_values() -> None:
    patch = {"signing_secret": "********", "headers": {"Authorization": "********", "X": "new"}, "batch": True}
    assert secrets.merge(WEBHOOK, STORED, patch) == {**STORED, "batch": True,
                                                     "headers": {"Authorization": "t", "X": "new"}}
    with pytest.raises(ValueError, match="no stored value"):
        secrets.merge(WEBHOOK, STORED, {"headers": {"Other": "********"}})
    with pytest.raises(ValueError, match="placeholder"):
        secrets.refuse_placeholder(WEBHOOK, {"base_url": "https://a.example", "headers": {"A": "********"}})


def test_moving_the_target_needs_every_stored_secret_again() -> None:
    moved = {"base_url": "https://b.example/hook"}
    with pytest.raises(secrets.SecretsRequired, match="`headers`, `signing_secret`"):
        secrets.merge(WEBHOOK, STORED, moved)
    with pytest.raises(secrets.SecretsRequired, match="`headers`"):
        secrets.merge(WEBHOOK, STORED, {**moved, "signing_secret": "s2", "headers": {"Authorization": "********"}})
    merged = secrets.merge(WEBHOOK, STORED, {**moved, "signing_secret": "s2", "headers": {}})
    assert merged == {**moved, "signing_secret": "s2", "headers": {}}
    assert secrets.merge(WEBHOOK, STORED, {"base_url": STORED["base_url"]}) == STORED  # not moved
    # Slack's URL is itself the secret; PostgreSQL's dsn too: giving it is re-entering it.
    slack = destination("slack")
    assert secrets.merge(slack, {"base_url": "https://hooks.slack.com/a"}, {"base_url": "https://hooks.slack.com/b"})


def test_an_output_the_key_cannot_open_waits_and_the_others_start(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}"))
    monkeypatch.setenv("KAON_SECRET_KEY", Fernet.generate_key().decode())
    store = OutputStore(db.conn(), "ws_test")
    sealed = store.create_output("old-key", "webhook", STORED, True)
    monkeypatch.setenv("KAON_SECRET_KEY", Fernet.generate_key().decode())  # the key was replaced
    other = store.create_output("new-key", "webhook", STORED, True)
    assert [o[0] for o in enabled_outputs(db.conn())] == [other.id]
    assert [o.id for o in store.outputs()] == [sealed.id, other.id]  # listing and routing still work
