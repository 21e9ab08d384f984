"""The events owner's statements for merges, aliases and data subject requests (find, export, erase)."""

import pytest

from kaon.store import events
from kaon.store.db import Database
from kaon.store.events import EventStore, StoredEvent
from kaon.store.sql import Conn
from kaon.store.subject import Subject


@pytest.fixture
def conn(database: Database) -> Conn:
    """The main store on SQLite, then on PostgreSQL."""
    return database.conn()


def _event(ws: str, batch_id: int, mpid: int | None, n: int) -> StoredEvent:
    return StoredEvent(workspace_id=ws, input_id="in", batch_id=batch_id, mpid=mpid, event_type="custom_event",
                       event_name=f"e{n}", source_message_id=f"m-{n}", timestamp_ms=1_000 + n, received_ms=2_000 + n,
                       environment="production", body=b'{"data": {"n": %d}}' % n)


def _subject(ws: str, mpids: set[int], identities: set[tuple[str, str]] | None = None) -> Subject:
    return Subject(workspace_id=ws, mpids=mpids, identities=identities or set(), attribute_values=set(),
                   event_ids=[])


def test_rekey_moves_all_or_the_given_events(conn: Conn) -> None:
    store = EventStore(conn)
    ids = store.insert_events([_event("w", 1, 1, n) for n in range(4)] + [_event("other", 1, 1, 9)])
    assert store.ids_of("w", 1) == ids[:4]
    assert store.rekey("w", 1, 2) == 4
    assert store.ids_of("w", 2) == ids[:4] and store.ids_of("other", 1) == [ids[4]]
    assert store.rekey("w", 2, 1, ids=[ids[0], ids[2], ids[4]]) == 2
    assert store.ids_of("w", 1) == [ids[0], ids[2]] and store.ids_of("w", 2) == [ids[1], ids[3]]


def test_copy_window_copies_the_events_timed_within(conn: Conn) -> None:
    store = EventStore(conn)
    store.insert_events([_event("w", 1, 1, n) for n in range(5)] + [_event("other", 1, 1, 2)])
    assert store.copy_window("w", 1, 2, 1_001, 1_003) == 3
    copied = store.page("w", 10, filters=events.EventFilters(mpid=2))
    assert sorted(e["event_name"] for e in copied) == ["e1", "e2", "e3"]
    assert {e["source_message_id"] for e in copied} == {"m-1", "m-2", "m-3"}
    assert len(store.ids_of("w", 1)) == 5


def test_with_events_finds_ids_message_ids_and_batches(conn: Conn) -> None:
    store = EventStore(conn)
    b1, b2 = store.insert_batch("w", "in", 1, b"{}"), store.insert_batch("w", "in", 1, b"{}")
    ids = store.insert_events([_event("w", b1, 1, 1), _event("w", b2, 2, 2), _event("w", b2, 3, 3),
                               _event("other", b1, 1, 4)])
    subject = events.with_events(conn, _subject("w", {1, 2}))
    assert subject.event_ids == ids[:2]
    assert subject.source_message_ids == ["m-1", "m-2"] and subject.batch_ids == [b1, b2]
    assert subject.mpids == {1, 2}


def test_export_subject_lists_the_events_in_order(conn: Conn) -> None:
    store = EventStore(conn)
    ids = store.insert_events([_event("w", 1, 1, 2), _event("w", 1, 1, 1), _event("other", 1, 1, 3)])
    subject = events.with_events(conn, _subject("w", {1}))
    exported = events.export_subject(conn, subject)["events"]
    assert [(e["event_id"], e["event_name"], e["mpid"], e["data"]) for e in exported] == [
        (ids[0], "e2", "1", {"data": {"n": 2}}), (ids[1], "e1", "1", {"data": {"n": 1}})]


def test_erase_subject_deletes_their_events_and_batches_only(conn: Conn) -> None:
    store = EventStore(conn)
    theirs = store.insert_batch("w", "in", 1, b"{}")
    store.insert_batch("w", "in", 1, b'{"user_identities": {"email": "A@x.com"}}')  # names them
    store.insert_batch("w", "in", 1, b'{"mpid": "7"}')  # names their profile
    kept = [store.insert_batch("w", "in", 1, b'{"user_identities": {"email": "aa@x.com"}}'),
            store.insert_batch("w", "in", 1, b'{"mpid": 77}'),
            store.insert_batch("other", "in", 1, b'{"user_identities": {"email": "a@x.com"}}')]
    ids = store.insert_events([_event("w", theirs, 7, 1), _event("w", kept[0], 8, 2)])
    subject = events.with_events(conn, _subject("w", {7}, {("email", "a@x.com")}))
    assert events.erase_subject(conn, subject) == {"batches": 3, "events": 1}
    assert [int(i) for (i,) in conn.execute("SELECT id FROM batches ORDER BY id")] == kept
    assert [int(i) for (i,) in conn.execute("SELECT id FROM events")] == [ids[1]]
