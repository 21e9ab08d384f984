"""IDSync modify over a real SQLite store: old → new replaces, unchanged ids keep their history, limits hold.

Each call runs in its own transaction, as the IDSync doors run it (a refusal rolls the whole request back).
"""

from pathlib import Path
from typing import Any

import pytest

from kaon.identity import idsync
from kaon.identity.store import ProfileStore
from kaon.model.errors import PayloadError
from kaon.store.tx import transaction
from support.identity_store import IdentityWorld


class World(IdentityWorld):

    def identify(self, **known: str) -> int:
        with transaction(self.conn):
            answer = idsync.identify(self.service(), idsync.IdentityRequest(known_identities=dict(known)))
        return int(answer["mpid"])

    def modify(self, mpid: int, *changes: tuple[str, str | None, str | None]) -> dict[str, Any] | None:
        request = idsync.ModifyRequest(identity_changes=[
            idsync.IdentityChange(identity_type=t, old_value=o, new_value=n) for t, o, n in changes])
        with transaction(self.conn):
            return idsync.modify(self.service(), mpid, request)

    def held(self, mpid: int) -> dict[tuple[str, str], int]:
        """(type, value) → first seen, of the profile."""
        return {(t, v): s for t, v, s in ProfileStore(self.conn, self.ws).identities(mpid)}

    def owner(self, identity_type: str, value: str) -> int | None:
        return ProfileStore(self.conn, self.ws).owners([(identity_type, value)]).get((identity_type, value))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_old_and_new_values_replace_the_email(world: World) -> None:
    mpid = world.identify(customerid="c-1", email="a@x")
    answer = world.modify(mpid, ("email", "a@x", "b@x"))
    assert answer == {"change_results": [{"identity_type": "email", "modified_mpid": str(mpid)}]}
    assert set(world.held(mpid)) == {("customer_id", "c-1"), ("email", "b@x")}
    assert world.owner("email", "a@x") is None


def test_an_unchanged_identity_keeps_its_first_seen_time(world: World) -> None:
    # The web SDK sends every identity in a modify, unchanged ones with old == new.
    mpid = world.identify(customerid="c-2", email="a@x")
    before = world.held(mpid)[("customer_id", "c-2")]
    world.modify(mpid, ("customerid", "c-2", "c-2"), ("email", "a@x", "b@x"))
    assert world.held(mpid)[("customer_id", "c-2")] == before


def test_a_replacement_within_the_limit_passes_and_an_add_over_it_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path, limits={"email": 1})
    mpid = world.identify(customerid="c-3", email="a@x")
    world.modify(mpid, ("email", "a@x", "b@x"))
    assert set(world.held(mpid)) == {("customer_id", "c-3"), ("email", "b@x")}
    with pytest.raises(PayloadError) as refused:
        world.modify(mpid, ("other", None, "o-1"), ("email", None, "c@x"))
    assert refused.value.code == "IDENTITY_LIMIT"
    assert refused.value.message == (
        f"profile {mpid} already holds 1 `email` values, the workspace's limit - at `$.identity_changes[1].new_value`")
    # Refused as a whole: the first change of the request is not kept either (the doors roll back).
    assert set(world.held(mpid)) == {("customer_id", "c-3"), ("email", "b@x")}


def test_a_unique_value_held_elsewhere_moves(world: World) -> None:
    a = world.identify(customerid="c-a")
    b = world.identify(email="b@x")
    world.modify(b, ("customerid", None, "c-a"))
    assert world.owner("customer_id", "c-a") == b
    assert set(world.held(a)) == set()


def test_a_null_new_value_removes(world: World) -> None:
    mpid = world.identify(customerid="c-4", email="a@x")
    world.modify(mpid, ("email", "a@x", None))
    assert set(world.held(mpid)) == {("customer_id", "c-4")}
