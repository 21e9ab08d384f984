"""Partition leases on the PostgreSQL log: fair split, takeover after the TTL, never two holders, status."""

import threading
import time

from kaon.log.base import LogEntry
from kaon.log.leases import PartitionLeases, log_status
from kaon.log.postgres import PostgresLog
from support.waiting import eventually

TTL = 400


def test_two_workers_split_the_partitions(pg_log: PostgresLog) -> None:
    a, b = PartitionLeases(pg_log), PartitionLeases(pg_log)
    assert a.acquire("a", 10_000) == pg_log.partitions()  # alone: every partition (4 + the replay one)
    assert b.acquire("b", 10_000) == []  # all held; a gives some back at its next acquire
    for _ in range(2):
        mine_a, mine_b = a.acquire("a", 10_000), b.acquire("b", 10_000)
    assert (len(mine_a), len(mine_b)) == (3, 2)
    assert not set(mine_a) & set(mine_b) and set(mine_a) | set(mine_b) == set(pg_log.partitions())
    assert a.held("a") == mine_a and b.held("b") == mine_b
    a.release("a")
    assert a.held("a") == [] and b.acquire("b", 10_000) == pg_log.partitions()  # a left: b takes everything
    a.close()
    b.close()


def test_a_worker_that_stops_renewing_loses_its_partitions_after_the_ttl(pg_log: PostgresLog) -> None:
    a, b = PartitionLeases(pg_log), PartitionLeases(pg_log)
    taken_at = time.monotonic()
    assert a.acquire("a", TTL) == pg_log.partitions()
    assert b.acquire("b", TTL) == []
    generation = a.generation("0")
    # a stops renewing; b keeps asking and gets them once they expired, not before.
    eventually(lambda: b.acquire("b", 10_000) == pg_log.partitions(), timeout=10, what="b takes over")
    assert time.monotonic() - taken_at >= TTL / 1000
    assert a.held("a") == [] and a.renew("a", TTL) == []  # too late: nothing to renew
    assert b.generation("0") == generation + 1
    a.close()
    b.close()


def test_renewing_keeps_the_partitions(pg_log: PostgresLog) -> None:
    a, b = PartitionLeases(pg_log), PartitionLeases(pg_log)
    a.acquire("a", TTL)
    deadline = time.monotonic() + 3 * TTL / 1000
    while time.monotonic() < deadline:
        assert a.renew("a", TTL) == pg_log.partitions()
        assert b.acquire("b", TTL) == []  # a renews within its TTL: b gets nothing (a keeps its share until asked)
        time.sleep(TTL / 4000)
    a.close()
    b.close()


def test_never_two_holders_at_once(pg_log: PostgresLog) -> None:
    """Each worker records when it may believe it holds a partition: from when acquire returned until the
    lease it asked for could first expire, or until its next acquire began (which may give partitions back:
    workers call it between slices). No two workers' intervals for one partition overlap."""
    intervals: list[tuple[str, str, float, float]] = []
    lock = threading.Lock()
    stop = time.monotonic() + 3

    def work(owner: str, stall_every: int) -> None:
        leases = PartitionLeases(pg_log)
        calls: list[tuple[float, float, list[str]]] = []
        n = 0
        while time.monotonic() < stop:
            start = time.time() * 1000
            mine = leases.acquire(owner, TTL)
            calls.append((start, time.time() * 1000, mine))
            n += 1
            # Now and then a worker stalls past its TTL (a long GC pause, a lost network): others take over.
            time.sleep(TTL * 1.5 / 1000 if n % stall_every == 0 else TTL / 8000)
        leases.close()
        ends = [c[0] for c in calls[1:]] + [float("inf")]
        with lock:
            intervals.extend((p, owner, returned, min(start + TTL - 2, end))
                             for (start, returned, mine), end in zip(calls, ends, strict=True) for p in mine)

    workers = [threading.Thread(target=work, args=(f"w{i}", 5 + i)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    owners_of = {(p, o) for p, o, _, _ in intervals}
    assert len({o for _, o in owners_of}) == 4 and len(owners_of) > len(pg_log.partitions())  # leases moved
    by_partition: dict[str, list[tuple[float, float, str]]] = {}
    for p, o, begin, end in intervals:
        if begin < end:
            by_partition.setdefault(p, []).append((begin, end, o))
    for p, spans in by_partition.items():
        spans.sort()
        held_until: dict[str, float] = {}
        for begin, end, owner in spans:
            others = [(o, e) for o, e in held_until.items() if o != owner and e > begin]
            assert not others, f"partition {p} held by {others} while {owner} took it at {begin}"
            held_until[owner] = max(end, held_until.get(owner, 0.0))


def test_status_lists_workers_leases_and_lag(pg_log: PostgresLog) -> None:
    pg_log.append([LogEntry(kind="k", workspace_id="ws", input_id="i", received_ms=1, body=b"x", user_key=None)
                   for _ in range(5)])
    leases = PartitionLeases(pg_log)
    leases.acquire("worker-1", 10_000, info="host-a pid 7")
    status = log_status(pg_log, {"0": 2})
    assert [(w.owner, w.live, w.info, w.partitions) for w in status.workers] == [
        ("worker-1", True, "host-a pid 7", pg_log.partitions())]
    first = status.partitions[0]
    assert (first.partition, first.owner, first.head_seq, first.committed_seq, first.lag) == ("0", "worker-1", 5, 2, 3)
    assert all(p.lag == 0 for p in status.partitions[1:])
    leases.release("worker-1")
    after = log_status(pg_log, {"0": 2})
    assert after.workers == [] and all(p.owner is None for p in after.partitions)
    leases.close()
