"""Store units over a real SQLite database: message-id dedup windows and newest-first, filtered event paging."""

from typing import Any

import msgspec
import pytest

from kaon.store import dedup
from kaon.store.db import Database
from kaon.store.dedup import DedupStore
from kaon.store.events import EventFilters, EventStore, StoredEvent
from kaon.store.subject import Subject


@pytest.fixture
def db(database: Database) -> Database:
    return database


def test_first_sighting_within_and_after_the_window(db: Database) -> None:
    store = DedupStore(db.conn(), window_ms=1000)
    assert store.first_sighting("ws", "m", 10_000)
    assert not store.first_sighting("ws", "m", 10_500)
    assert not store.first_sighting("ws", "m", 11_000)  # exactly at the window edge: still a repeat
    assert store.first_sighting("ws", "m", 11_001)
    assert not store.first_sighting("ws", "m", 11_002)  # the window restarts at the new sighting


def test_dedup_is_per_workspace(db: Database) -> None:
    store = DedupStore(db.conn(), window_ms=1000)
    assert store.first_sighting("ws_a", "m", 1)
    assert store.first_sighting("ws_b", "m", 1)
    assert not store.first_sighting("ws_a", "m", 2)


def test_expire_drops_only_old_ids(db: Database) -> None:
    store = DedupStore(db.conn(), window_ms=1000)
    store.first_sighting("ws", "old", 1_000)
    store.first_sighting("ws", "new", 5_000)
    assert store.expire(5_500) == 1
    assert store.first_sighting("ws", "old", 5_600)
    assert not store.first_sighting("ws", "new", 5_600)


def row(n: int, workspace: str = "ws") -> StoredEvent:
    return StoredEvent(workspace_id=workspace, input_id="in", batch_id=1, mpid=n, event_type="custom_event",
                       event_name=f"e{n}", source_message_id=f"m{n}", timestamp_ms=n, received_ms=n,
                       environment="production", body=b'{"event_type":"custom_event","data":{"n":%d}}' % n)


def test_event_pages_are_newest_first_and_cover_every_event_once(db: Database) -> None:
    store = EventStore(db.conn())
    store.insert_events([row(n) for n in range(25)] + [row(99, "other")])
    assert store.count("ws") == 25
    seen: list[str] = []
    after = None
    while True:
        page = store.page("ws", 10, after)
        if not page:
            break
        seen.extend(e["event_name"] for e in page)
        after = (page[-1]["received_unixtime_ms"], page[-1]["id"])
    assert seen == [f"e{n}" for n in reversed(range(25))]
    first = store.page("ws", 1, None)[0]
    assert first["mpid"] == "24" and first["data"] == {"n": 24}


def test_event_pages_order_by_receive_time_then_id(db: Database) -> None:
    """A slice processed late (another partition) still lists by when Kaon received it; ties go by id."""
    store = EventStore(db.conn())
    store.insert_events([row(5), row(3), row(5), row(4)])
    listed = store.page("ws", 10)
    assert [(e["received_unixtime_ms"], e["id"]) for e in listed] == [(5, 3), (5, 1), (4, 4), (3, 2)]
    assert [e["id"] for e in store.page("ws", 10, (5, 3))] == [1, 4, 2]


def test_event_filters_each_narrow_the_list(db: Database) -> None:
    store = EventStore(db.conn())
    base = row(0)
    store.insert_events([
        msgspec.structs.replace(base, mpid=1, event_name="Buy", received_ms=10),
        msgspec.structs.replace(base, mpid=2, event_name="Buy", received_ms=20, input_id="other-in"),
        msgspec.structs.replace(base, mpid=1, event_type="screen_view", event_name="Home", received_ms=30),
        msgspec.structs.replace(base, mpid=1, event_name="Buy", received_ms=40),
    ])

    def names(**filters: Any) -> list[tuple[str | None, int]]:
        return [(e["event_name"], e["received_unixtime_ms"])
                for e in store.page("ws", 10, filters=EventFilters(**filters))]

    assert names(event_name="Buy") == [("Buy", 40), ("Buy", 20), ("Buy", 10)]
    assert names(event_type="screen_view") == [("Home", 30)]
    assert names(mpid=1) == [("Buy", 40), ("Home", 30), ("Buy", 10)]
    assert names(input_id="other-in") == [("Buy", 20)]
    assert names(since_ms=20, until_ms=40) == [("Home", 30), ("Buy", 20)]
    assert names(mpid=1, event_name="Buy", since_ms=11) == [("Buy", 40)]
    assert [e["received_unixtime_ms"] for e in store.page("ws", 1, (40, 4), filters=EventFilters(mpid=1))] == [30]


def test_forget_and_erase_subject_drop_only_the_given_ids(db: Database) -> None:
    store = DedupStore(db.conn(), window_ms=1000)
    for ws, message_id in (("ws", "a"), ("ws", "b"), ("ws", "c"), ("other", "a")):
        store.first_sighting(ws, message_id, 1)
    assert store.forget("ws", ["a", "a", "zzz"]) == 1
    assert store.first_sighting("ws", "a", 2) and not store.first_sighting("other", "a", 2)
    subject = Subject(workspace_id="ws", mpids=set(), identities=set(), attribute_values=set(), event_ids=[],
                      source_message_ids=["b"])
    assert dedup.erase_subject(db.conn(), subject) == {"message_ids": 1}
    assert store.first_sighting("ws", "b", 3) and not store.first_sighting("ws", "c", 3)
