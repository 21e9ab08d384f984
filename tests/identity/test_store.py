"""The identity owner's statements: merge and alias bookkeeping, and the data subject's find, export and erase."""

import msgspec
import pytest

from kaon.identity import store as identity_store
from kaon.identity.store import ProfileStore
from kaon.store.config import ConfigStore
from kaon.store.db import Database
from kaon.store.sql import Conn


@pytest.fixture
def conn(database: Database) -> Conn:
    """The main store on SQLite, then on PostgreSQL."""
    return database.conn()


def _workspaces(conn: Conn) -> tuple[str, str]:
    config = ConfigStore(conn)
    return config.create_workspace("w").id, config.create_workspace("other").id


def test_seen_keeps_the_earliest_first_and_latest_last_seen(conn: Conn) -> None:
    ws, _ = _workspaces(conn)
    store = ProfileStore(conn, ws)
    mpid = store.create(1_000)
    store.seen(mpid, 500, 900, sessions=2)
    store.seen(mpid, 700, 3_000)
    row = store.row(mpid)
    assert row is not None
    assert (row["first_seen_ms"], row["last_seen_ms"], row["session_count"]) == (500, 3_000, 2)


def test_merge_bookkeeping(conn: Conn) -> None:
    ws, other = _workspaces(conn)
    store = ProfileStore(conn, ws)
    a, b, c = store.create(1), store.create(2), store.create(3)
    store.link(b, ("email", "b@x.com"), 5)
    store.set_attribute(b, "plan", "gold", 5)
    store.move_identities(b, a)
    assert store.owners([("email", "b@x.com")]) == {("email", "b@x.com"): a}
    store.move_identity(("email", "b@x.com"), c, b)  # c does not hold it: nothing moves
    store.move_identity(("email", "b@x.com"), a, b)
    assert store.owners([("email", "b@x.com")]) == {("email", "b@x.com"): b}
    store.drop_attributes(b)
    assert store.attribute_rows(b) == []
    first = store.add_merge(a, b, reason="r", actor="t", now_ms=10, snapshot=b"{}")
    second = store.add_merge(a, c, reason="r", actor="t", now_ms=11, snapshot=b"{}")
    store.set_merged_into(b, a)
    assert store.live(b) == a
    assert store.merge_record(first) == (a, b, b"{}", None)
    assert ProfileStore(conn, other).merge_record(first) is None
    assert store.latest_open_merge_into(a) == second and store.open_merge_of(c) == second
    store.mark_undone(second, actor="admin", now_ms=20)
    assert store.latest_open_merge_into(a) == first and store.open_merge_of(c) is None
    assert [m["merge_id"] for m in store.merges_of(a)] == [second, first]
    assert [m["merge_id"] for m in store.merges_of(a, limit=1)] == [second]
    assert [m["merge_id"] for m in store.merges_of(a, after=second)] == [first]
    assert store.merges_of(a)[0]["undone_unixtime_ms"] == 20


def test_summary_and_survivor_restore(conn: Conn) -> None:
    ws, _ = _workspaces(conn)
    store = ProfileStore(conn, ws)
    a = store.create(1)
    before = store.row(a)
    assert before is not None
    store.set_summary(a, first_seen_ms=0, last_seen_ms=50, session_count=3, is_opted_out=True,
                      consent={"gdpr": {}})
    gone = {"session_count": 5, "last_seen_ms": 50}
    store.restore_survivor(a, before, gone)
    row = store.row(a)
    assert row is not None
    # The sessions never go below zero; last seen goes back, as the survivor did not move on since.
    assert (row["session_count"], row["last_seen_ms"], row["is_opted_out"], row["consent"]) == (0, 1, False, {})


def test_alias_request_bookkeeping(conn: Conn) -> None:
    ws, other = _workspaces(conn)
    store = ProfileStore(conn, ws)
    a, b = store.create(1), store.create(2)
    alias_id = store.add_alias_request(a, b, 100, 200, now_ms=300, due_ms=400)
    assert store.was_alias_source(a) and not store.was_alias_source(b)
    assert store.was_alias_destination(b) and not store.was_alias_destination(a)
    assert not ProfileStore(conn, other).was_alias_source(a)
    assert store.alias_overlaps(a, 200, 250) and not store.alias_overlaps(a, 201, 250)
    assert identity_store.due_aliases(conn, 399) == [] and identity_store.due_aliases(conn, 400) == [alias_id]
    request = identity_store.alias_request(conn, alias_id)
    assert request is not None and (request.source_mpid, request.destination_mpid, request.done_ms) == (a, b, None)
    identity_store.finish_alias(conn, alias_id, now_ms=500, events_copied=3)
    assert identity_store.due_aliases(conn, 1_000) == []
    done = identity_store.alias_request(conn, alias_id)
    assert done is not None and done.done_ms == 500
    assert identity_store.alias_request(conn, alias_id + 1) is None


def _person(conn: Conn, ws: str) -> tuple[int, int, int]:
    """A survivor with a tombstone merged into it, and a stranger."""
    store = ProfileStore(conn, ws)
    survivor, tombstone, stranger = store.create(1), store.create(2), store.create(3)
    store.link(survivor, ("email", "a@x.com"), 1)
    store.link(tombstone, ("device_application_stamp", "dev-1"), 2)
    store.link(stranger, ("email", "s@x.com"), 3)
    store.set_attribute(survivor, "name", {"first": "Ann", "tags": ["vip", 7]}, 1)
    store.set_attribute(tombstone, "gone", "x", 1)
    store.delete_attribute(tombstone, "gone", 2)
    store.set_attribute(stranger, "name", "Sam", 1)
    store.set_merged_into(tombstone, survivor)
    store.add_merge(survivor, tombstone, reason="r", actor="t", now_ms=5, snapshot=b"{}")
    store.add_merge(stranger, store.create(4), reason="r", actor="t", now_ms=6,
                    snapshot=msgspec.json.encode({"merged_identities": [["email", "a@x.com", 1]]}))
    store.add_alias_request(tombstone, survivor, 0, 10, now_ms=1, due_ms=1)
    return survivor, tombstone, stranger


def test_find_subject_follows_the_merge_chain_both_ways(conn: Conn) -> None:
    ws, _ = _workspaces(conn)
    survivor, tombstone, _ = _person(conn, ws)
    for mpids, identities in (({tombstone}, set()), (set(), {("email", "a@x.com")}), ({survivor}, set())):
        subject = identity_store.find_subject(conn, ws, mpids, identities)
        assert subject.mpids == {survivor, tombstone}
        assert subject.identities == {("email", "a@x.com"), ("device_application_stamp", "dev-1")}
        assert subject.attribute_values == {"Ann", "vip", "7"}  # a removal holds no value
        assert subject.event_ids == []
    unknown = identity_store.find_subject(conn, ws, {12345}, {("email", "nobody@x.com")})
    assert unknown.mpids == set() and unknown.identities == {("email", "nobody@x.com")}


def test_export_subject(conn: Conn) -> None:
    ws, _ = _workspaces(conn)
    survivor, tombstone, _ = _person(conn, ws)
    subject = identity_store.find_subject(conn, ws, {survivor}, set())
    export = identity_store.export_subject(conn, subject)
    assert [p["mpid"] for p in export["profiles"]] == [str(survivor), str(tombstone)]
    assert export["profiles"][1]["merged_into"] == str(survivor)
    assert [(i["identity_type"], i["value"]) for i in export["identities"]] == [
        ("device_application_stamp", "dev-1"), ("email", "a@x.com")]
    assert [(a["mpid"], a["name"]) for a in export["attributes"]] == [(str(survivor), "name")]  # removals left out


def test_erase_subject_deletes_the_person_only(conn: Conn) -> None:
    ws, other = _workspaces(conn)
    survivor, tombstone, stranger = _person(conn, ws)
    elsewhere = ProfileStore(conn, other)
    elsewhere.link(elsewhere.create(1), ("email", "a@x.com"), 1)
    subject = identity_store.find_subject(conn, ws, {survivor}, set())
    counts = identity_store.erase_subject(conn, subject)
    # Both merges go: one joined their profiles, the stranger's snapshot names their email.
    assert counts == {"merges": 2, "alias_requests": 1, "profile_attributes": 2, "identities": 2, "profiles": 2}
    store = ProfileStore(conn, ws)
    assert store.row(survivor) is None and store.row(tombstone) is None
    assert store.row(stranger) is not None and store.attributes(stranger) == {"name": ("Sam", 1)}
    assert store.owners([("email", "s@x.com")]) == {("email", "s@x.com"): stranger}
    assert elsewhere.owners([("email", "a@x.com")]) != {}
    assert identity_store.erase_subject(conn, subject) == {"merges": 0, "alias_requests": 0,
                                                           "profile_attributes": 0, "identities": 0, "profiles": 0}


def test_json_in_text_columns_is_written_as_text(conn: Conn) -> None:
    """PostgreSQL binds bytes as bytea, which a TEXT column refuses: consent and attribute values go as str."""
    ws, _ = _workspaces(conn)
    store = ProfileStore(conn, ws)
    mpid = store.create(1)
    store.set_consent(mpid, {"gdpr": {}})
    store.set_attribute(mpid, "a", [1], 1)
    store.delete_attribute(mpid, "b", 1)
    store.put_attribute_row(mpid, ("c", "x", 1, False))
    store.set_summary(mpid, first_seen_ms=1, last_seen_ms=1, session_count=0, is_opted_out=False, consent={})
    assert store.attributes(mpid) == {"a": ([1], 1), "c": ("x", 1)}
    assert store.row(mpid)["consent"] == {}  # type: ignore[index]
    if conn.dialect.sqlite:  # SQLite would keep bytes as a blob
        kinds = {str(k) for (k,) in conn.execute("SELECT typeof(value) FROM profile_attributes")}
        kinds |= {str(k) for (k,) in conn.execute("SELECT typeof(consent) FROM profiles")}
        assert kinds == {"text"}
