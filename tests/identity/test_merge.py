"""Merges (what moves to the survivor, the audit row) and unmerge (exact restoration, refusals)."""

from pathlib import Path
from typing import Any

import pytest

from kaon.errors import Conflict, NotFound
from kaon.identity.extract import DEVICE_STAMP
from kaon.identity.merge import unmerge
from kaon.identity.service import Identity as IdentityService
from kaon.identity.store import ProfileStore
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.events import EventStore, StoredEvent
from kaon.store.tx import transaction

C, E, D = "customer_id", "email", DEVICE_STAMP


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.conn = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path}/k.db")).conn()
        self.ws = ConfigStore(self.conn).create_workspace("w").id
        self.other_ws = ConfigStore(self.conn).create_workspace("other").id
        self.clock = 100_000

    def resolve(self, *ids: tuple[str, str]) -> Any:
        self.clock += 1_000
        with transaction(self.conn):
            s = IdentityService(self.conn, self.ws, actor="test", now_ms=self.clock)
            ordered = sorted(ids, key=lambda i: (s.policy.rank(i[0]), i[0]))
            result = s.resolver.resolve(ordered, self.clock)
        assert result is not None
        return result

    @property
    def store(self) -> ProfileStore:
        return ProfileStore(self.conn, self.ws)

    def events(self, mpid: int, names: list[str], at: int) -> None:
        with transaction(self.conn):
            EventStore(self.conn).insert_events([
                StoredEvent(workspace_id=self.ws, input_id="in", batch_id=1, mpid=mpid, event_type="custom_event",
                            event_name=n, source_message_id=f"m-{n}", timestamp_ms=at + i, received_ms=at + i,
                            environment="production", body=b"{}")
                for i, n in enumerate(names)])

    def unmerge(self, merge_id: int) -> dict[str, Any]:
        self.clock += 1_000
        with transaction(self.conn):
            return unmerge(self.conn, self.ws, merge_id, actor="admin", now_ms=self.clock)

    def state(self) -> dict[str, Any]:
        """Everything a merge may touch, for exact before/after comparisons."""
        q = self.conn.execute
        return {
            "profiles": sorted(q("SELECT mpid, created_ms, first_seen_ms, last_seen_ms, session_count, is_opted_out,"
                                 " consent, merged_into FROM profiles WHERE workspace_id = ?", (self.ws,))),
            "identities": sorted(q("SELECT identity_type, value, mpid, first_seen_ms FROM identities"
                                   " WHERE workspace_id = ?", (self.ws,))),
            "attributes": sorted(q("SELECT mpid, name, value, updated_ms, deleted FROM profile_attributes"
                                   " WHERE workspace_id = ?", (self.ws,))),
            "events": sorted(q("SELECT id, mpid FROM events WHERE workspace_id = ?", (self.ws,))),
        }

    def event_names(self, mpid: int) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT event_name FROM events WHERE workspace_id = ? AND mpid = ?", (self.ws, mpid))}


def gdpr(consented: bool, ts: int) -> dict[str, Any]:
    return {"consented": consented, "timestamp_unixtime_ms": ts, "document": f"doc@{ts}"}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def two_profiles(world: World) -> tuple[int, int]:
    """`known` (customer id, older, more sessions) and `anon` (email and device); a link merges anon into known."""
    known = world.resolve((C, "c1"), (D, "d-known")).mpid
    anon = world.resolve((E, "a@x.io"), (D, "d-anon")).mpid
    s = world.store
    with transaction(world.conn):
        s.seen(known, 10_000, 50_000, sessions=3)
        s.seen(anon, 20_000, 190_000, sessions=2)
        s.set_attribute(known, "tier", "gold", 5_000)
        s.set_attribute(anon, "tier", "silver", 9_000)  # newer: wins
        s.set_attribute(known, "city", "Paris", 9_000)  # newer: wins
        s.set_attribute(anon, "city", "Rome", 4_000)
        s.set_attribute(anon, "plan", ["a", "b"], 3_000)  # only on anon: moves
        s.set_attribute(known, "tie", "survivor", 7_000)
        s.set_attribute(anon, "tie", "merged", 7_000)
        s.set_attribute(known, "nickname", "K", 2_000)
        s.delete_attribute(anon, "nickname", 8_000)  # a newer removal on the merged side: the survivor loses it
        s.set_attribute(anon, "mood", "happy", 6_000)
        s.delete_attribute(known, "mood", 6_500)  # a newer removal on the survivor: the older value stays gone
        s.set_consent(known, {"gdpr": {"ads": gdpr(True, 1_000), "email": gdpr(True, 5_000)}})
        s.set_consent(anon, {"gdpr": {"ads": gdpr(False, 2_000), "email": gdpr(False, 4_000)},
                             "ccpa": {"data_sale_opt_out": gdpr(True, 3_000)}})
        s.set_opted_out(anon, True)
    world.events(known, ["k1", "k2"], 60_000)
    world.events(anon, ["a1", "a2", "a3"], 70_000)
    return known, anon


def test_merge_moves_everything_to_the_survivor_with_an_audit_row(world: World) -> None:
    known, anon = two_profiles(world)
    last_seen = max(world.store.row(known)["last_seen_ms"], world.store.row(anon)["last_seen_ms"])  # type: ignore[index]
    result = world.resolve((C, "c1"), (E, "a@x.io"))
    assert result.mpid == known and result.merged == [anon]

    s = world.store
    assert {(t, v) for t, v, _ in s.identities(known)} == {(C, "c1"), (D, "d-known"), (E, "a@x.io"), (D, "d-anon")}
    assert s.identities(anon) == []
    assert s.live(anon) == known
    # Attributes: newest wins; the survivor's on a tie.
    attributes = {n: v for n, (v, _) in s.attributes(known).items()}
    assert attributes == {"tier": "silver", "city": "Paris", "plan": ["a", "b"], "tie": "survivor"}
    assert s.attributes(anon) == {}
    assert {r[0]: r[2:] for r in s.attribute_rows(known) if r[3]} == {"nickname": (8_000, True), "mood": (6_500, True)}
    row = s.row(known)
    assert row is not None
    assert (row["first_seen_ms"], row["last_seen_ms"], row["session_count"]) == (10_000, last_seen, 5)
    assert row["is_opted_out"] is True
    assert row["consent"] == {"gdpr": {"ads": gdpr(False, 2_000), "email": gdpr(True, 5_000)},
                              "ccpa": {"data_sale_opt_out": gdpr(True, 3_000)}}
    # Events re-keyed to the survivor.
    assert world.event_names(known) == {"k1", "k2", "a1", "a2", "a3"}
    assert world.event_names(anon) == set()
    audit = world.conn.execute(
        "SELECT survivor_mpid, merged_mpid, reason, actor, merged_ms, undone_ms FROM merges WHERE workspace_id = ?",
        (world.ws,)).fetchall()
    assert len(audit) == 1
    survivor, merged, reason, actor, merged_ms, undone = audit[0]
    assert (survivor, merged, actor, merged_ms, undone) == (known, anon, "test", world.clock, None)
    assert reason.startswith("unify") and "email" in reason


def test_unmerge_restores_both_profiles_exactly(world: World) -> None:
    known, anon = two_profiles(world)
    before = world.state()
    world.resolve((C, "c1"), (E, "a@x.io"))
    assert world.state() != before
    merge_id = world.conn.execute("SELECT id FROM merges").fetchone()[0]

    restored = world.unmerge(merge_id)
    assert restored["events_restored"] == 3
    assert world.state() == before
    assert world.event_names(anon) == {"a1", "a2", "a3"}
    assert world.store.live(anon) == anon
    # The audit row records the undo; a second undo is refused.
    undone = world.conn.execute("SELECT undone_ms, undone_by FROM merges WHERE id = ?", (merge_id,)).fetchone()
    assert undone == (world.clock, "admin")
    with pytest.raises(Conflict):
        world.unmerge(merge_id)
    assert world.state() == before
    # Resolution sees two profiles again.
    assert world.resolve((E, "a@x.io")).mpid == anon
    assert world.resolve((C, "c1")).mpid == known


def test_unmerge_keeps_what_happened_to_the_survivor_after_the_merge(world: World) -> None:
    known, anon = two_profiles(world)
    world.resolve((C, "c1"), (E, "a@x.io"))
    merge_id = world.conn.execute("SELECT id FROM merges").fetchone()[0]
    later = world.resolve((C, "c1"), ("ios_idfv", "v-new"))  # a new identity after the merge
    assert later.mpid == known
    with transaction(world.conn):
        world.store.set_attribute(known, "tier", "platinum", 95_000)  # newer than both
    world.events(known, ["k3"], 99_000)
    world.unmerge(merge_id)
    s = world.store
    assert ("ios_idfv", "v-new") in {(t, v) for t, v, _ in s.identities(known)}
    assert s.attributes(known)["tier"][0] == "platinum"
    assert s.attributes(anon)["tier"][0] == "silver"
    assert world.event_names(known) == {"k1", "k2", "k3"}
    assert world.event_names(anon) == {"a1", "a2", "a3"}


def test_unmerge_refused_when_the_survivor_was_merged_again_later(world: World) -> None:
    known, anon = two_profiles(world)
    world.resolve((C, "c1"), (E, "a@x.io"))
    first = world.conn.execute("SELECT id FROM merges").fetchone()[0]
    # A mobile number outranks the device stamp: its profile takes the survivor in.
    phone = world.resolve(("mobile_number", "+100")).mpid
    second = world.resolve(("mobile_number", "+100"), (D, "d-known"))
    assert second.mpid == phone and second.merged == [known]
    state = world.state()
    with pytest.raises(Conflict, match="merged again"):
        world.unmerge(first)
    assert world.state() == state  # nothing changed
    # Undoing in order works.
    second_id = world.conn.execute("SELECT id FROM merges WHERE merged_mpid = ?", (known,)).fetchone()[0]
    world.unmerge(second_id)
    world.unmerge(first)
    assert world.store.live(anon) == anon and world.store.live(known) == known


def test_unmerge_of_an_unknown_or_foreign_merge_is_not_found(world: World) -> None:
    world.resolve((C, "c1"))
    with pytest.raises(NotFound):
        world.unmerge(12345)
    known, anon = world.resolve((C, "c2")).mpid, world.resolve((E, "z@x.io")).mpid
    world.resolve((C, "c2"), (E, "z@x.io"))
    merge_id = world.conn.execute("SELECT id FROM merges").fetchone()[0]
    with transaction(world.conn), pytest.raises(NotFound):
        unmerge(world.conn, world.other_ws, merge_id, actor="x", now_ms=1)
    assert world.store.live(anon) == known


def test_merged_profiles_never_hold_two_customer_ids(world: World) -> None:
    a = world.resolve((C, "c1"), (D, "d1")).mpid
    b = world.resolve((C, "c2"), (E, "e@x.io")).mpid
    # d1 and e link the two, but their customer ids differ: no merge.
    result = world.resolve((E, "e@x.io"), (D, "d1"))
    assert result.merged == []
    assert world.store.live(a) == a and world.store.live(b) == b
    assert world.conn.execute("SELECT COUNT(*) FROM merges").fetchone()[0] == 0
