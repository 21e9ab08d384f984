"""Store units over a real SQLite database: message-id dedup windows and newest-first event paging."""

from pathlib import Path

import pytest

from kaon.store.db import Database, DatabaseUrl
from kaon.store.dedup import DedupStore
from kaon.store.events import EventStore, StoredEvent
from kaon.types import EventId


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}"))


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
    before = None
    while True:
        page = store.page("ws", 10, before)
        if not page:
            break
        seen.extend(e["event_name"] for e in page)
        before = EventId(page[-1]["id"])
    assert seen == [f"e{n}" for n in reversed(range(25))]
    first = store.page("ws", 1, None)[0]
    assert first["mpid"] == "24" and first["data"] == {"n": 24}
