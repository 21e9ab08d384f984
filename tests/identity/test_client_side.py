"""Client-side (key-only, web) IDSync calls over a real SQLite store: nobody's identities or events can be taken.

Each attack is run with `client_side=True` (refused) and again as a server credential would (still allowed), so a
test fails if the rule is missing or if it also took the server's powers away.
"""

from pathlib import Path
from typing import Any

import pytest

from kaon.identity import idsync
from kaon.identity.alias import request_alias
from kaon.identity.resolve import Resolution
from kaon.identity.store import ProfileStore
from kaon.model.errors import PayloadError
from kaon.store.tx import transaction
from support.identity_store import IdentityWorld


class World(IdentityWorld):

    def identify(self, client_side: bool = False, **known: str) -> tuple[dict[str, Any], Resolution]:
        with transaction(self.conn):
            return idsync.identify_resolved(self.service(), idsync.IdentityRequest(known_identities=dict(known)),
                                            client_side)

    def mpid(self, client_side: bool = False, **known: str) -> int:
        return int(self.identify(client_side, **known)[0]["mpid"])

    def modify(self, mpid: int, change: tuple[str, str | None, str | None], client_side: bool) -> None:
        request = idsync.ModifyRequest(identity_changes=[
            idsync.IdentityChange(identity_type=change[0], old_value=change[1], new_value=change[2])])
        with transaction(self.conn):
            idsync.modify(self.service(), mpid, request, client_side)

    def alias(self, source: int, destination: int, stamp: str | None, client_side: bool) -> None:
        data = idsync.AliasData(source_mpid=source, destination_mpid=destination, device_application_stamp=stamp)
        with transaction(self.conn):
            service = self.service()
            request_alias(self.conn, self.ws, data, now_ms=service.now_ms,
                          client_login_types=service.policy.login_types if client_side else None)

    def owner(self, identity_type: str, value: str) -> int | None:
        return ProfileStore(self.conn, self.ws).owners([(identity_type, value)]).get((identity_type, value))

    def live(self, mpid: int) -> int | None:
        return ProfileStore(self.conn, self.ws).live(mpid)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# modify

def test_a_web_modify_cannot_take_a_customer_id_another_profile_holds(world: World) -> None:
    victim = world.mpid(customerid="victim")
    attacker = world.mpid(True, customerid="attacker")
    with pytest.raises(PayloadError) as refused:
        world.modify(attacker, ("customerid", "attacker", "victim"), client_side=True)
    assert refused.value.code == "IDENTITY_CLAIMED"
    assert world.owner("customer_id", "victim") == victim
    assert world.owner("customer_id", "attacker") == attacker  # refused as a whole: nothing changed
    assert world.mpid(True, customerid="victim") == victim  # the victim's next identify is still theirs
    # A server credential still moves it (mParticle's modify).
    world.modify(attacker, ("customerid", "attacker", "victim"), client_side=False)
    assert world.owner("customer_id", "victim") == attacker


def test_a_web_modify_may_still_add_and_change_its_own_values(world: World) -> None:
    mine = world.mpid(True, customerid="me", email="a@x")
    world.modify(mine, ("email", "a@x", "b@x"), client_side=True)
    world.modify(mine, ("other", None, "o-1"), client_side=True)
    assert world.owner("email", "b@x") == mine and world.owner("other", "o-1") == mine


# identify / login under unify

def test_a_web_login_with_a_victims_email_does_not_merge_the_victim(world: World) -> None:
    victim = world.mpid(email="victim@x")
    attacker = world.mpid(True, customerid="attacker")
    answer, resolution = world.identify(True, customerid="attacker", email="victim@x")
    assert int(answer["mpid"]) == attacker
    assert resolution.merged == [] and resolution.refused_merges == [(victim, "not_device_linked")]
    assert world.live(victim) == victim and world.owner("email", "victim@x") == victim
    # A server credential may unify them (identities seen together belong to one profile).
    _, server = world.identify(False, customerid="attacker", email="victim@x")
    assert server.merged == [victim]


def test_a_web_login_never_merges_a_profile_holding_a_login_id(tmp_path: Path) -> None:
    world = World(tmp_path, login_types=("customer_id", "email"))
    victim = world.mpid(email="victim@x", device_application_stamp="das-v")
    world.mpid(True, customerid="attacker")
    _, resolution = world.identify(True, customerid="attacker", device_application_stamp="das-v")
    assert resolution.refused_merges == [(victim, "login_id")]
    assert world.live(victim) == victim


def test_a_web_login_still_merges_this_devices_anonymous_profile(world: World) -> None:
    known = world.mpid(True, customerid="c-1", device_application_stamp="das-1")
    anonymous = world.mpid(True, device_application_stamp="das-2")
    answer, resolution = world.identify(True, customerid="c-1", device_application_stamp="das-2")
    assert int(answer["mpid"]) == known and resolution.merged == [anonymous]
    assert world.live(anonymous) == known


def test_a_web_identify_reaches_a_known_profile_only_through_its_login_id(world: World) -> None:
    victim = world.mpid(customerid="victim", email="victim@x")
    assert world.mpid(True, email="victim@x") != victim
    assert world.owner("email", "victim@x") == victim  # not moved to the new profile
    assert world.mpid(True, customerid="victim") == victim
    assert world.mpid(False, email="victim@x") == victim  # unify, server credential: as before


def test_a_web_identify_answer_is_the_same_shape_for_known_and_unknown_identities(world: World) -> None:
    world.mpid(email="known@x")
    known, _ = world.identify(True, email="known@x")
    unknown, _ = world.identify(True, email="nobody@x")
    assert {k: v for k, v in known.items() if k != "mpid"} == {k: v for k, v in unknown.items() if k != "mpid"}
    assert known["matched_identities"] == {} and known["is_logged_in"] is False
    logged_in, _ = world.identify(True, customerid="new-one")
    assert logged_in["is_logged_in"] is True
    server, _ = world.identify(False, email="known@x")
    assert server["matched_identities"] == {"email": "known@x"}


def test_a_web_logout_answer_does_not_say_whether_the_device_was_known(world: World) -> None:
    world.mpid(device_application_stamp="das-known")
    answers = []
    for stamp in ("das-known", "das-new"):
        with transaction(world.conn):
            request = idsync.IdentityRequest(known_identities={"device_application_stamp": stamp})
            answers.append(idsync.logout(world.service(), request, client_side=True))
    assert [{k: v for k, v in a.items() if k != "mpid"} for a in answers] == [
        {"context": None, "is_ephemeral": False, "is_logged_in": False, "matched_identities": {}}] * 2


# alias

def test_a_web_alias_must_name_the_sources_device_stamp(world: World) -> None:
    source = world.mpid(True, device_application_stamp="das-s")
    destination = world.mpid(True, customerid="dest")
    for stamp in (None, "das-other"):
        with pytest.raises(PayloadError) as refused:
            world.alias(source, destination, stamp, client_side=True)
        assert refused.value.code == "ALIAS_DEVICE_MISMATCH"
    world.alias(source, destination, "das-s", client_side=True)


def test_a_web_alias_cannot_copy_a_known_users_events(world: World) -> None:
    victim = world.mpid(customerid="victim", device_application_stamp="das-v")
    attacker = world.mpid(True, customerid="attacker")
    with pytest.raises(PayloadError) as refused:
        world.alias(victim, attacker, "das-v", client_side=True)
    assert refused.value.code == "ALIAS_SOURCE_KNOWN"
    world.alias(victim, attacker, None, client_side=False)  # a server credential may
