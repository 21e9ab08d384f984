"""Identity resolution over a real SQLite store: unify, uniqueness, limits, blocked values, hints, strategies.

Every call runs inside `kaon.store.tx.transaction`, as the process stage and the IDSync doors run it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kaon.identity import idsync
from kaon.identity.extract import DEVICE_STAMP, Identity, batch_identities
from kaon.identity.policy import DEFAULT_BLOCKED, DEFAULT_POLICY, IdentityPolicy
from kaon.identity.resolve import Resolution
from kaon.identity.service import Identity as IdentityService
from kaon.identity.store import ProfileStore
from kaon.model.batch import Batch
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.tx import transaction

C = "customer_id"
E = "email"
D = DEVICE_STAMP


class World:
    """One workspace in a fresh SQLite store, with the identity machinery one transaction at a time."""

    def __init__(self, tmp_path: Path, **policy: Any) -> None:
        self.db = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path}/k.db"))
        self.conn = self.db.conn()
        config = ConfigStore(self.conn)
        self.ws = config.create_workspace("w").id
        if policy:
            config.set_setting(self.ws, "identity", msgspec.to_builtins(IdentityPolicy(**policy)))
        self.clock = 1_000

    @contextmanager
    def service(self) -> Iterator[IdentityService]:
        self.clock += 1_000
        with transaction(self.conn):
            yield IdentityService(self.conn, self.ws, actor="test", now_ms=self.clock)

    def resolve(self, *ids: Identity, hint: int | None = None, create: bool = True,
                link: bool = True) -> Resolution:
        with self.service() as s:
            # Callers (batch extraction, IDSync) hand identities over strongest first: do the same.
            ordered = sorted(ids, key=lambda i: (s.policy.rank(i[0]), i[0]))
            result = s.resolver.resolve(ordered, s.now_ms, mpid_hint=hint, create=create, link=link)
        assert result is not None
        return result

    def batch(self, body: dict[str, Any], hint: int | None = None) -> Resolution:
        """Resolve a batch's identities as the process stage does (extraction, blocked values, order)."""
        with self.service() as s:
            ids = batch_identities(msgspec.convert(body, Batch), s.policy)
            result = s.resolver.resolve(ids, s.now_ms, mpid_hint=hint)
        assert result is not None
        return result

    def call(self, operation: str, known: dict[str, str | None]) -> dict[str, Any]:
        request = idsync.IdentityRequest(known_identities=known)
        with self.service() as s:
            # login is identify (the doors route both to it).
            answer = getattr(idsync, "identify" if operation == "login" else operation)(s, request)
        assert answer is not None
        return dict(answer)

    @property
    def store(self) -> ProfileStore:
        return ProfileStore(self.conn, self.ws)

    def ids(self, mpid: int) -> set[Identity]:
        return {(t, v) for t, v, _ in self.store.identities(mpid)}

    def live_profiles(self) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(
            "SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IS NULL", (self.ws,))]

    def all_identities(self) -> list[tuple[str, str, int]]:
        return [(t, v, int(m)) for t, v, m in self.conn.execute(
            "SELECT identity_type, value, mpid FROM identities WHERE workspace_id = ?", (self.ws,))]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# Unify

def test_identities_seen_together_converge_on_one_profile(world: World) -> None:
    first = world.resolve((E, "a@x.io"), (D, "d1"))
    assert first.created
    again = world.resolve((D, "d1"), ("ios_idfv", "v1"))
    assert again.mpid == first.mpid and not again.created
    assert again.matched == [(D, "d1")]
    by_idfv = world.resolve(("ios_idfv", "v1"))
    assert by_idfv.mpid == first.mpid
    assert world.ids(first.mpid) == {(E, "a@x.io"), (D, "d1"), ("ios_idfv", "v1")}
    assert world.live_profiles() == [first.mpid]


def test_a_batch_linking_two_profiles_merges_them(world: World) -> None:
    a = world.resolve((E, "a@x.io"), (D, "d1")).mpid
    b = world.resolve((C, "c1"), (D, "d2")).mpid
    assert a != b
    linking = world.resolve((E, "a@x.io"), (C, "c1"))
    # The customer id is stronger than the email: its profile survives.
    assert linking.mpid == b and linking.merged == [a]
    assert world.live_profiles() == [b]
    assert world.ids(b) == {(E, "a@x.io"), (D, "d1"), (C, "c1"), (D, "d2")}
    assert world.store.live(a) == b
    reason = world.conn.execute("SELECT reason, actor, survivor_mpid, merged_mpid FROM merges").fetchall()
    assert len(reason) == 1
    assert reason[0][1:] == ("test", b, a)
    assert "email" in reason[0][0] and str(a) in reason[0][0]


def test_a_batch_through_batch_identities_normalises_and_merges(world: World) -> None:
    a = world.batch({"user_identities": {"email": " Ann@Example.COM "}, "mp_deviceid": "d1"}).mpid
    assert world.ids(a) == {(E, "ann@example.com"), (D, "d1")}
    b = world.batch({"user_identities": {"customerid": "c1"}, "device_info": {"ios_idfv": "v2"}}).mpid
    assert world.ids(b) == {(C, "c1"), ("ios_idfv", "v2")}
    joined = world.batch({"user_identities": {"email": "ANN@example.com"}, "device_info": {"ios_idfv": "v2"}})
    # The email outranks the IDFV: its profile survives.
    assert joined.mpid == a and joined.merged == [b]
    assert world.live_profiles() == [a]
    assert world.ids(a) == {(E, "ann@example.com"), (D, "d1"), (C, "c1"), ("ios_idfv", "v2")}


# Unique customer id

def test_two_customer_ids_never_share_a_profile(world: World) -> None:
    p1 = world.resolve((C, "c1"), (D, "d1")).mpid
    second = world.resolve((C, "c2"), (D, "d1"))  # same device, another customer
    assert second.mpid != p1 and second.created
    assert (D, "d1", "held_elsewhere") in second.skipped
    assert world.ids(p1) == {(C, "c1"), (D, "d1")}
    assert world.ids(second.mpid) == {(C, "c2")}
    for mpid in world.live_profiles():
        assert len(world.store.values_of(mpid, C)) <= 1


def test_conflicting_profiles_are_not_merged_and_the_strongest_identity_wins(world: World) -> None:
    p1 = world.resolve((C, "c1")).mpid
    p2 = world.resolve((C, "c2"), (E, "e@x.io")).mpid
    mixed = world.resolve((C, "c1"), (E, "e@x.io"), (D, "d9"))
    assert mixed.mpid == p1  # customer id outranks email
    assert mixed.merged == []
    assert (E, "e@x.io", "held_elsewhere") in mixed.skipped
    assert world.ids(p1) == {(C, "c1"), (D, "d9")}
    assert world.ids(p2) == {(C, "c2"), (E, "e@x.io")}
    assert sorted(world.live_profiles()) == sorted([p1, p2])
    assert world.conn.execute("SELECT COUNT(*) FROM merges").fetchone()[0] == 0


def test_batch_goes_to_highest_priority_identity_that_does_not_conflict(world: World) -> None:
    # The email's profile holds another customer id: the batch goes to the device's profile instead.
    p_email = world.resolve((C, "c2"), (E, "e@x.io")).mpid
    p_device = world.resolve((D, "d1")).mpid
    result = world.resolve((C, "c1"), (E, "e@x.io"), (D, "d1"))
    assert result.mpid == p_device
    assert world.ids(p_device) == {(C, "c1"), (D, "d1")}
    assert (E, "e@x.io", "held_elsewhere") in result.skipped
    assert world.ids(p_email) == {(C, "c2"), (E, "e@x.io")}


def test_unique_link_refused_on_a_hinted_profile(world: World) -> None:
    p1 = world.resolve((C, "c1")).mpid
    # A client insists on p1 with another customer id: p1 conflicts, so a new profile takes c2.
    result = world.resolve((C, "c2"), hint=p1)
    assert result.mpid != p1
    assert world.ids(p1) == {(C, "c1")}


# Limits

def test_per_type_limit_refuses_links_beyond_it(tmp_path: Path) -> None:
    world = World(tmp_path, limits={"email": 2})
    p = world.resolve((D, "d1"), (E, "a@x.io")).mpid
    assert world.resolve((D, "d1"), (E, "b@x.io")).mpid == p
    third = world.resolve((D, "d1"), (E, "c@x.io"))
    assert third.mpid == p
    assert (E, "c@x.io", "limit") in third.skipped
    assert world.store.values_of(p, E) == {"a@x.io", "b@x.io"}
    assert world.store.owners([(E, "c@x.io")]) == {}


def test_without_a_limit_emails_accumulate(world: World) -> None:
    p = world.resolve((D, "d1"), (E, "a@x.io")).mpid
    for letter in "bcd":
        world.resolve((D, "d1"), (E, f"{letter}@x.io"))
    assert len(world.store.values_of(p, E)) == 4


# Blocked values

BLOCKED = [*DEFAULT_BLOCKED, "00000000-0000-0000-0000-000000000000", "0", "0000-00", "NULL", " null ", "Undefined",
           "  ", " -1 ", "TEST@test.com", " Test@Test.Com ", "NaN", "ANONYMOUS", "None"]


@pytest.mark.parametrize("value", BLOCKED)
def test_blocked_values_are_never_stored_nor_matched(world: World, value: str) -> None:
    assert DEFAULT_POLICY.is_blocked(value)
    batches = [
        {"user_identities": {"email": value, "customer_id": value, "other": value},
         "device_info": {"ios_advertising_id": value, "android_advertising_id": value}, "mp_deviceid": value},
        {"user_identities": {"email": value, "customer_id": value, "other": value},
         "device_info": {"ios_advertising_id": value, "android_advertising_id": value}, "mp_deviceid": value},
    ]
    mpids = [world.batch(b).mpid for b in batches]
    assert mpids[0] != mpids[1]  # nothing matched: two anonymous profiles
    assert world.all_identities() == []
    # Through IDSync too: identify creates, never matches; search finds nothing.
    first = world.call("identify", {"email": value, "customerid": value, "ios_idfa": value})
    second = world.call("identify", {"email": value, "customerid": value, "ios_idfa": value})
    assert first["mpid"] != second["mpid"] and first["matched_identities"] == {}
    with world.service() as s:
        assert idsync.search(s, idsync.IdentityRequest(known_identities={"email": value})) is None
    assert world.all_identities() == []


@pytest.mark.parametrize("value", ["c1", "nullable", "-12", "a@test.com", "00000000-0000-0000-0000-000000000001"])
def test_usable_values_are_stored(world: World, value: str) -> None:
    assert not DEFAULT_POLICY.is_blocked(value)
    p = world.resolve(("other", value)).mpid
    assert world.resolve(("other", value)).mpid == p


def test_email_is_normalised_lowercase_and_trimmed(world: World) -> None:
    p = world.batch({"user_identities": {"email": "  Jane.Doe@Example.COM "}}).mpid
    assert world.ids(p) == {(E, "jane.doe@example.com")}
    assert world.batch({"user_identities": {"email": "jane.doe@example.com"}}).mpid == p
    answer = world.call("identify", {"email": "JANE.DOE@EXAMPLE.com"})
    assert answer["mpid"] == str(p) and answer["matched_identities"] == {"email": "jane.doe@example.com"}
    # Other types keep their case: customer ids are case-sensitive.
    q = world.batch({"user_identities": {"customer_id": "AbC"}}).mpid
    assert world.ids(q) == {(C, "AbC")}
    assert world.batch({"user_identities": {"customer_id": "abc"}}).mpid != q


# Hints

def test_a_valid_mpid_hint_is_honoured_without_merging(world: World) -> None:
    a = world.resolve((E, "a@x.io")).mpid
    b = world.resolve((D, "d1")).mpid
    result = world.resolve((D, "d1"), ("ios_idfv", "v1"), hint=a)
    assert result.mpid == a and result.merged == []
    assert (D, "d1", "held_elsewhere") in result.skipped
    assert world.ids(a) == {(E, "a@x.io"), ("ios_idfv", "v1")}
    assert world.ids(b) == {(D, "d1")}


def test_a_merged_mpid_hint_follows_to_its_survivor(world: World) -> None:
    a = world.resolve((E, "a@x.io")).mpid
    b = world.resolve((C, "c1")).mpid
    assert world.resolve((E, "a@x.io"), (C, "c1")).merged == [a]
    result = world.resolve(("ios_idfv", "v1"), hint=a)
    assert result.mpid == b and not result.created
    assert ("ios_idfv", "v1") in world.ids(b)


def test_an_unknown_mpid_hint_is_used_for_the_new_profile(world: World) -> None:
    result = world.resolve((E, "new@x.io"), hint=4_925_811_138_463_542_011)
    assert result.created and result.mpid == 4_925_811_138_463_542_011
    negative = world.resolve((E, "neg@x.io"), hint=-7_636_538_281_262_557_000)
    assert negative.mpid == -7_636_538_281_262_557_000
    assert world.store.row(result.mpid) is not None


# Strategies

def test_profile_conversion_adds_the_login_id_to_the_anonymous_profile(tmp_path: Path) -> None:
    world = World(tmp_path, strategy="profile_conversion")
    anonymous = world.call("identify", {"device_application_stamp": "d1"})
    assert anonymous["is_logged_in"] is False
    login = world.call("login", {"customerid": "c1", "device_application_stamp": "d1"})
    assert login["mpid"] == anonymous["mpid"] and login["is_logged_in"] is True
    known = int(login["mpid"])
    assert world.ids(known) == {(C, "c1"), (D, "d1")}
    # A known profile is returned only with its login id.
    without = world.call("identify", {"device_application_stamp": "d1"})
    assert without["mpid"] != login["mpid"] and without["is_logged_in"] is False
    with world.service() as s:
        assert idsync.search(s, idsync.IdentityRequest(known_identities={"device_application_stamp": "d1"})) is None
    assert world.call("identify", {"customerid": "c1"})["mpid"] == login["mpid"]
    # No merges in this strategy.
    assert world.conn.execute("SELECT COUNT(*) FROM merges").fetchone()[0] == 0


@pytest.mark.parametrize("strategy", ["profile_link", "profile_isolation"])
def test_link_and_isolation_create_a_new_profile_for_a_new_login_id(tmp_path: Path, strategy: str) -> None:
    world = World(tmp_path, strategy=strategy)
    anonymous = world.call("identify", {"device_application_stamp": "d1", "email": "a@x.io"})
    login = world.call("login", {"customerid": "c1", "device_application_stamp": "d1"})
    assert login["mpid"] != anonymous["mpid"] and login["is_logged_in"] is True
    assert world.ids(int(anonymous["mpid"])) == {(D, "d1"), (E, "a@x.io")}  # anonymous data is left alone
    assert world.call("login", {"customerid": "c1"})["mpid"] == login["mpid"]
    # The anonymous profile keeps its email and is still found by it.
    assert world.call("identify", {"email": "a@x.io"})["mpid"] == anonymous["mpid"]


def test_isolation_logout_returns_the_devices_anonymous_profile(tmp_path: Path) -> None:
    world = World(tmp_path, strategy="profile_isolation")
    anonymous = world.call("identify", {"device_application_stamp": "d1"})
    login = world.call("login", {"customerid": "c1", "device_application_stamp": "d1"})
    assert login["mpid"] != anonymous["mpid"]
    out = world.call("logout", {"device_application_stamp": "d1"})
    assert out["mpid"] == anonymous["mpid"] and out["is_logged_in"] is False
    assert world.call("logout", {"device_application_stamp": "d1"})["mpid"] == anonymous["mpid"]


def test_link_logout_is_always_a_new_profile(tmp_path: Path) -> None:
    world = World(tmp_path, strategy="profile_link")
    anonymous = world.call("identify", {"device_application_stamp": "d1"})
    world.call("login", {"customerid": "c1", "device_application_stamp": "d1"})
    first = world.call("logout", {"device_application_stamp": "d1"})
    second = world.call("logout", {"device_application_stamp": "d1"})
    assert len({anonymous["mpid"], first["mpid"], second["mpid"]}) == 3
    assert first["is_logged_in"] is False


def test_best_match_never_merges_and_allows_two_emails(tmp_path: Path) -> None:
    world = World(tmp_path, strategy="best_match")
    p = world.resolve((D, "d1"), (E, "a@x.io")).mpid
    assert world.resolve((D, "d1"), (E, "b@x.io")).mpid == p
    assert world.store.values_of(p, E) == {"a@x.io", "b@x.io"}
    q = world.resolve((E, "q@x.io")).mpid
    both = world.resolve((E, "q@x.io"), (D, "d1"))
    assert both.merged == [] and both.mpid in (p, q)
    assert sorted(world.live_profiles()) == sorted([p, q])
    assert world.conn.execute("SELECT COUNT(*) FROM merges").fetchone()[0] == 0


def test_unify_merges_where_best_match_would_not(world: World) -> None:
    # The same sequence as above, under the default strategy: one profile.
    p = world.resolve((D, "d1"), (E, "a@x.io")).mpid
    q = world.resolve((E, "q@x.io")).mpid
    both = world.resolve((E, "q@x.io"), (D, "d1"))
    assert both.merged in ([p], [q])
    assert len(world.live_profiles()) == 1


# Search and read-only resolution

def test_search_never_creates_links_or_merges(world: World) -> None:
    a = world.resolve((E, "a@x.io")).mpid
    b = world.resolve((D, "d1")).mpid
    with world.service() as s:
        found = idsync.search(s, idsync.IdentityRequest(
            known_identities={"email": "a@x.io", "device_application_stamp": "d1", "other": "o1"}))
    assert found is not None and found["mpid"] == str(a)
    assert sorted(world.live_profiles()) == sorted([a, b])
    assert world.conn.execute("SELECT COUNT(*) FROM merges").fetchone()[0] == 0
    assert world.store.owners([("other", "o1")]) == {}
    with world.service() as s:
        assert idsync.search(s, idsync.IdentityRequest(known_identities={"email": "nobody@x.io"})) is None
    assert sorted(world.live_profiles()) == sorted([a, b])


def test_resolve_without_create_finds_nothing_for_strangers(world: World) -> None:
    with world.service() as s:
        assert s.resolver.resolve([(E, "x@x.io")], s.now_ms, create=False, link=False) is None
    assert world.live_profiles() == []
