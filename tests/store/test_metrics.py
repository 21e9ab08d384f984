"""Hourly counters read back in pages: every (hour, input) row once, whole, in order, whatever the page size."""

from collections import Counter

import pytest

from kaon.store import metrics
from kaon.store.db import Database
from kaon.store.metrics import HOUR_MS, CounterKey, MetricsStore
from kaon.store.subject import Subject


@pytest.fixture
def store(database: Database) -> MetricsStore:
    db = database
    counts: Counter[CounterKey] = Counter()
    for hour in range(4):
        for input_id in ("in_a", "in_b", "in_c"):
            if (hour, input_id) == (2, "in_b"):
                continue  # an hour an input had nothing
            counts[("ws", input_id, hour * HOUR_MS, "events_received", "")] = 10 + hour
            counts[("ws", input_id, hour * HOUR_MS, "rejected", "INVALID_SHAPE")] = 1
            counts[("ws", input_id, hour * HOUR_MS, "rejected", "UNAUTHORIZED")] = 2
            counts[("ws", input_id, hour * HOUR_MS, "consent_unknown_purpose", "ads")] = 1
            counts[("ws", input_id, hour * HOUR_MS, "consent_unknown_purpose", "maps")] = 3
    counts[("other", "in_x", 0, "events_received", "")] = 99
    store = MetricsStore(db.conn())
    store.add(counts)
    return store


def pages(store: MetricsStore, limit: int, **window: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    after = None
    while True:
        rows = store.stats("ws", limit=limit, after=after, **window)
        out.extend(rows)
        if len(rows) < limit:
            return out
        after = (int(str(rows[-1]["hour_start_unixtime_ms"])), str(rows[-1]["input_id"]))


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 100])
def test_stats_pages_hold_every_row_once_and_whole(store: MetricsStore, limit: int) -> None:
    whole = store.stats("ws")
    assert len(whole) == 11
    assert [(r["hour_start_unixtime_ms"], r["input_id"]) for r in whole] == sorted(
        (r["hour_start_unixtime_ms"], r["input_id"]) for r in whole)
    assert whole[0]["rejected"] == {"INVALID_SHAPE": 1, "UNAUTHORIZED": 2} and whole[0]["events_received"] == 10
    assert pages(store, limit) == whole


def test_stats_window_and_input(store: MetricsStore) -> None:
    rows = store.stats("ws", HOUR_MS, 3 * HOUR_MS, input_id="in_b")
    assert [(r["hour_start_unixtime_ms"], r["input_id"]) for r in rows] == [(HOUR_MS, "in_b")]
    assert pages(store, 2, since_ms=2 * HOUR_MS) == store.stats("ws", 2 * HOUR_MS)


def test_reasons_page_by_hour_input_and_reason(store: MetricsStore) -> None:
    whole = store.reasons("ws", "consent_unknown_purpose")
    assert len(whole) == 22 and whole[:2] == [
        {"input_id": "in_a", "hour_start_unixtime_ms": 0, "reason": "ads", "count": 1},
        {"input_id": "in_a", "hour_start_unixtime_ms": 0, "reason": "maps", "count": 3}]
    seen, after = [], None
    while rows := store.reasons("ws", "consent_unknown_purpose", after=after, limit=3):
        seen.extend(rows)
        last = rows[-1]
        after = (int(last["hour_start_unixtime_ms"]), str(last["input_id"]), str(last["reason"]))
    assert seen == whole


def test_rejections_page_newest_first(database: Database) -> None:
    store = MetricsStore(database.conn())
    for n in range(5):
        store.record_rejection(workspace_id="ws", input_id="in", received_ms=n, status=400, code=f"C{n}",
                               message="m", count=1, body=None)
    first = store.rejections("ws", 2)
    assert [r["code"] for r in first] == ["C4", "C3"]
    assert [r["code"] for r in store.rejections("ws", 10, after=int(first[-1]["id"]))] == ["C2", "C1", "C0"]


def test_rejection_records_are_capped_per_workspace_and_for_none_oldest_dropped(database: Database) -> None:
    from kaon.store.metrics import PRUNE_EVERY
    conn = database.conn()
    store = MetricsStore(conn, rejections_kept=50)
    for index in range(1000):
        owner = None if index % 2 else "ws"
        store.record_rejection(workspace_id=owner, input_id=None, received_ms=index, status=401,
                               code="UNAUTHORIZED", message=f"n{index}", count=1, body=b"junk")
    for owner, unowned in (("ws", False), ("nobody", True)):
        rows = store.rejections(owner, 10_000, unowned=unowned)
        assert 50 <= len(rows) <= 50 + PRUNE_EVERY
        if owner == "ws":
            assert rows[0]["message"] == "n998"  # the newest kept, the oldest dropped
            assert {r["message"] for r in rows}.isdisjoint({"n0", "n2"})


def test_a_workspace_sees_only_its_own_rejections_unless_operator(database: Database) -> None:
    conn = database.conn()
    store = MetricsStore(conn)
    for owner in ("ws", "other", None):
        store.record_rejection(workspace_id=owner, input_id=None, received_ms=1, status=400, code="X",
                               message=str(owner), count=1, body=b"secret of " + str(owner).encode())
    assert [r["message"] for r in store.rejections("ws", 10)] == ["ws"]
    assert [r["message"] for r in store.rejections("ws", 10, unowned=True)] == ["None", "ws"]


def test_counters_add_up_on_conflict(database: Database) -> None:
    store = MetricsStore(database.conn())
    key: CounterKey = ("ws", "in_a", 0, "events_received", "")
    store.add(Counter({key: 2}))
    store.add(Counter({key: 3}))
    assert store.stats("ws")[0]["events_received"] == 5


def test_prune_keeps_the_newest_rejections_of_each_workspace(database: Database) -> None:
    store = MetricsStore(database.conn(), rejections_kept=2)
    for workspace, n in [("ws", n) for n in range(4)] + [(None, 10), ("other", 20)]:
        store.record_rejection(workspace_id=workspace, input_id=None, received_ms=1, status=400, code="X",
                               message=str(n), count=1, body=None)
    store.prune_rejections()
    assert [r["message"] for r in store.rejections("ws", 10, unowned=True)] == ["10", "3", "2"]


def test_erase_subject_deletes_rejections_naming_the_person(database: Database) -> None:
    conn = database.conn()
    store = MetricsStore(conn)
    for workspace, message, body in (("ws", "no", b'{"email": "a@x.com"}'), (None, "previousId 'a@x.com'", None),
                                     ("ws", "already on profile 42 (userId 'u')", b"{}"),
                                     ("ws", "profile 420 ", b'{"email": "aa@x.com"}'),
                                     ("other", "no", b'{"email": "a@x.com"}')):
        store.record_rejection(workspace_id=workspace, input_id=None, received_ms=1, status=400, code="X",
                               message=message, count=1, body=body)
    subject = Subject(workspace_id="ws", mpids={42}, identities={("email", "a@x.com")}, attribute_values=set(),
                      event_ids=[])
    assert metrics.erase_subject(conn, subject) == {"rejections": 3}
    assert [r["message"] for r in store.rejections("ws", 10, unowned=True)] == ["profile 420 "]
