"""The PostgreSQL ingest log against a real cluster: order per partition, routing, no skipped entry under
concurrent writers (threads and OS processes), truncate, scrub, replay partition."""

import subprocess
import sys
import textwrap
import threading
import zlib

import psycopg
import pytest
from psycopg import sql

from kaon.governance.dsr_erase import Subject
from kaon.governance.dsr_scrub import scrub_log
from kaon.log.base import REPLAY_PARTITION, LogEntry, StoredEntry
from kaon.log.errors import PartitionCountFixed, UnknownPartition
from kaon.log.postgres import PostgresLog
from support.postgres import PostgresCluster


def entry(n: int, user: str | None = "u1", ws: str = "ws", body: str | None = None) -> LogEntry:
    return LogEntry(kind="mparticle_batch", workspace_id=ws, input_id="in", received_ms=1000 + n, ip="10.0.0.1",
                    body=(body or f'{{"n":{n}}}').encode(), user_key=user)


def routed(e: LogEntry) -> LogEntry:
    """What is read back: the user key routes, and is not stored."""
    return LogEntry(kind=e.kind, workspace_id=e.workspace_id, input_id=e.input_id, received_ms=e.received_ms,
                    ip=e.ip, body=e.body)


def test_append_then_read_in_order_with_every_field(pg_log: PostgresLog) -> None:
    part = str(pg_log.part_of(entry(0)))
    pg_log.append([entry(1), entry(2)])
    pg_log.append([entry(3)])
    got = pg_log.read(part, 0, 100)
    assert [s.entry for s in got] == [routed(entry(n)) for n in (1, 2, 3)]
    assert [s.seq for s in got] == [1, 2, 3]
    assert all(s.partition == part for s in got)
    assert [s.entry for s in pg_log.read(part, 1, 1)] == [routed(entry(2))]
    assert pg_log.read(part, 3, 100) == []
    assert pg_log.heads()[part] == 3


def test_a_user_key_always_routes_to_the_same_partition(pg_log: PostgresLog) -> None:
    users = [f"user-{i}" for i in range(40)]
    pg_log.append([entry(i, user=u) for i, u in enumerate(users)])
    for i, user in enumerate(users):
        expected = zlib.crc32(f"ws\x1f{user}".encode()) % 4
        assert pg_log.part_of(entry(0, user=user)) == expected
        assert routed(entry(i, user=user)) in [s.entry for s in pg_log.read(str(expected), 0, 100)]
    assert len({pg_log.part_of(entry(0, user=u)) for u in users}) == 4  # keys spread over every partition
    assert pg_log.part_of(entry(0, user=None)) == 0
    assert pg_log.partitions() == ["0", "1", "2", "3", REPLAY_PARTITION]


def test_unkeyed_entries_may_be_spread(log_cluster: PostgresCluster, schema: str) -> None:
    log = PostgresLog(log_cluster.dsn(), partitions=4, schema=schema, spread_unkeyed=True)
    log.append([entry(i, user=None) for i in range(8)])
    assert [len(log.read(p, 0, 100)) for p in ["0", "1", "2", "3"]] == [2, 2, 2, 2]
    log.close()


def test_the_replay_partition_and_truncate(pg_log: PostgresLog) -> None:
    pg_log.append_to(REPLAY_PARTITION, [entry(1), entry(2), entry(3)])
    assert [s.seq for s in pg_log.read(REPLAY_PARTITION, 0, 10)] == [1, 2, 3]
    assert pg_log.truncate(REPLAY_PARTITION, 2) == 2
    assert [s.seq for s in pg_log.read(REPLAY_PARTITION, 0, 10)] == [3]
    pg_log.append_to(REPLAY_PARTITION, [entry(4)])
    assert [s.seq for s in pg_log.read(REPLAY_PARTITION, 0, 10)] == [3, 4]  # numbers are never reused
    with pytest.raises(UnknownPartition):
        pg_log.read("9", 0, 1)


def test_the_partition_count_is_fixed_when_created(log_cluster: PostgresCluster, pg_log: PostgresLog) -> None:
    with pytest.raises(PartitionCountFixed):
        PostgresLog(log_cluster.dsn(), partitions=8, schema=pg_log.schema)
    again = PostgresLog(log_cluster.dsn(), partitions=4, schema=pg_log.schema)
    again.close()


def test_scrub_matches_whole_values_and_stays_in_its_workspace(pg_log: PostgresLog) -> None:
    bodies = [("w", '{"user_identities":{"email":"a@x.com"}}'), ("w", '{"user_identities":{"email":"A@X.COM"}}'),
              ("w", '{"user_identities":{"email":"aa@x.com"}}'), ("w", '{"user_identities":{"email":"a@x.co"}}'),
              ("other", '{"user_identities":{"email":"a@x.com"}}')]
    pg_log.append([entry(i, user=None, ws=w, body=b) for i, (w, b) in enumerate(bodies)])
    pg_log.append_to(REPLAY_PARTITION, [entry(9, ws="w", body=bodies[0][1])])
    subject = Subject(workspace_id="w", mpids=set(), identities={("email", "a@x.com")}, attribute_values=set(),
                      event_ids=[])
    assert scrub_log(pg_log, subject) == 3
    left = [(e.entry.workspace_id, e.entry.body.decode()) for e in pg_log.read("0", 0, 10)]
    assert left == [bodies[2], bodies[3], bodies[4]]
    assert pg_log.read(REPLAY_PARTITION, 0, 10) == []


def test_a_writer_waits_for_an_earlier_number_to_commit(log_cluster: PostgresCluster, pg_log: PostgresLog) -> None:
    """The out-of-order commit hazard, made deterministic: writer A has taken number 1 and not committed; B's
    append must not commit number 2 before it (a reader that saw 2 would commit offset 2 and skip 1)."""
    s = sql.Identifier(pg_log.schema)
    with psycopg.connect(log_cluster.dsn()) as a:  # writer A, mid-append, as PostgresLog does it
        a.execute(sql.SQL("SELECT last_seq FROM {}.heads WHERE part = 0 FOR UPDATE").format(s))
        a.execute(sql.SQL("UPDATE {}.heads SET last_seq = last_seq + 1 WHERE part = 0").format(s))
        a.execute(sql.SQL("INSERT INTO {}.entries (part, seq, kind, received_ms, body) VALUES (0, 1, 'k', 1, 'a')")
                  .format(s))
        b = threading.Thread(target=pg_log.append, args=([entry(2, user=None)],))
        b.start()
        b.join(0.5)
        assert b.is_alive(), "B committed while A held an earlier number"
        assert pg_log.read("0", 0, 10) == []
        a.commit()
    b.join(10)
    assert [(s.seq, s.entry.body) for s in pg_log.read("0", 0, 10)] == [(1, b"a"), (2, b'{"n":2}')]


def _poll_everything(log: PostgresLog, done: threading.Event) -> dict[str, list[StoredEntry]]:
    """A consumer as the process stage is: read each partition after its offset, advance, until writers stop."""
    seen: dict[str, list[StoredEntry]] = {p: [] for p in log.partitions()}
    reader = PostgresLog(log.dsn, partitions=log.count, schema=log.schema)
    try:
        while True:
            finished = done.is_set()  # read once more after the writers are done
            for partition, got in seen.items():
                while batch := reader.read(partition, got[-1].seq if got else 0, 50):
                    got.extend(batch)
            if finished:
                return seen
    finally:
        reader.close()


def _check_nothing_skipped(seen: dict[str, list[StoredEntry]], log: PostgresLog, expected: int) -> None:
    heads = log.heads()
    for partition, got in seen.items():
        # Contiguous from 1: the reader missed no number, and every number it passed was there.
        assert [s.seq for s in got] == list(range(1, heads[partition] + 1)), partition
    bodies = [s.entry.body.decode() for got in seen.values() for s in got]
    assert len(bodies) == len(set(bodies)) == expected
    by_user: dict[str, list[int]] = {}
    for got in seen.values():
        for s in got:
            writer, user, n = s.entry.body.decode().split(":")
            by_user.setdefault(f"{writer}:{user}", []).append(int(n))
    assert all(ns == sorted(ns) for ns in by_user.values()), "a user's entries out of order"


def test_concurrent_writer_threads_never_make_a_reader_skip(log_cluster: PostgresCluster,
                                                            pg_log: PostgresLog) -> None:
    threads, rounds, group = 6, 40, 10
    done = threading.Event()
    result: dict[str, dict[str, list[StoredEntry]]] = {}
    reader = threading.Thread(target=lambda: result.setdefault("seen", _poll_everything(pg_log, done)))
    reader.start()

    def write(w: int) -> None:
        log = PostgresLog(log_cluster.dsn(), partitions=4, schema=pg_log.schema)
        for r in range(rounds):
            log.append([LogEntry(kind="k", workspace_id="ws", input_id="i", received_ms=r,
                                 body=f"t{w}:{k % 7}:{r * group + k}".encode(), user_key=f"t{w}-{k % 7}")
                        for k in range(group)])
        log.close()

    writers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(120)
    done.set()
    reader.join(60)
    _check_nothing_skipped(result["seen"], pg_log, threads * rounds * group)


WRITER = textwrap.dedent("""
    import sys
    from kaon.log.base import LogEntry
    from kaon.log.postgres import PostgresLog
    dsn, schema, name, rounds, group = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    log = PostgresLog(dsn, partitions=4, schema=schema)
    for r in range(rounds):
        log.append([LogEntry(kind="k", workspace_id="ws", input_id="i", received_ms=r,
                             body=f"{name}:{k % 5}:{r * group + k}".encode(), user_key=f"{name}-{k % 5}")
                    for k in range(group)])
    log.close()
""")


def test_two_writer_processes_never_make_a_reader_skip(log_cluster: PostgresCluster, pg_log: PostgresLog) -> None:
    rounds, group = 150, 8
    done = threading.Event()
    result: dict[str, dict[str, list[StoredEntry]]] = {}
    reader = threading.Thread(target=lambda: result.setdefault("seen", _poll_everything(pg_log, done)))
    reader.start()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, log_cluster.dsn(), pg_log.schema, f"p{i}",
                               str(rounds), str(group)]) for i in range(2)]
    codes = [p.wait(timeout=120) for p in procs]
    done.set()
    reader.join(60)
    assert codes == [0, 0]
    _check_nothing_skipped(result["seen"], pg_log, 2 * rounds * group)
