"""Partition leases for process workers on the PostgreSQL log, with their heartbeats and the log's lag.

    leases = PartitionLeases(log)                # its own connection to the log's database
    mine = leases.acquire(owner, ttl_ms)         # heartbeat; renew mine; take free/expired ones up to a fair share
    mine = leases.renew(owner, ttl_ms)           # heartbeat; extend mine; returns those still held
    leases.release(owner, partitions=None)       # give back some, or all and forget the worker (clean stop)
    leases.held(owner)                           # partitions whose lease is mine and unexpired
    status = log_status(log, committed, now_ms=None)   # workers, leases, lag (`kaon status`)

A worker's fair share is ceil(partitions / live workers), live meaning a heartbeat within its TTL; `acquire`
also gives back what is above the share, so a new worker gets partitions. Call `acquire`/`renew` between
slices, well within the TTL: a lease that expired may already be another worker's. A partition has one
holder at a time because taking it is a conditional UPDATE on rows locked with `FOR UPDATE SKIP LOCKED`
(free or expired only). Times are the database's clock, so machines' clocks need not agree. `generation`
counts takeovers, for a slice commit to check it still holds its partition (fencing).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from kaon.log.postgres import PostgresLog

_NOW = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


@dataclass(frozen=True)
class WorkerStatus:
    owner: str
    heartbeat_ms: int
    started_ms: int
    live: bool
    info: str
    partitions: list[str]


@dataclass(frozen=True)
class PartitionStatus:
    partition: str
    owner: str | None  # None: free or expired
    expires_ms: int
    head_seq: int
    committed_seq: int
    lag: int  # entries given a number but not yet processed (truncated ones included)


@dataclass(frozen=True)
class LogStatus:
    now_ms: int
    workers: list[WorkerStatus]
    partitions: list[PartitionStatus]


class PartitionLeases:
    def __init__(self, log: PostgresLog) -> None:
        self.log = log
        self._conn = log.connect()

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=sql.Identifier(self.log.schema))

    def _heartbeat(self, owner: str, ttl_ms: int, info: str) -> int:
        row = self._conn.execute(self._sql(
            f"INSERT INTO {{s}}.workers (owner, heartbeat_ms, started_ms, ttl_ms, info) VALUES (%s, {_NOW}, {_NOW},"
            " %s, %s) ON CONFLICT (owner) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms,"
            " ttl_ms = excluded.ttl_ms, info = excluded.info RETURNING heartbeat_ms"), (owner, ttl_ms, info)).fetchone()
        assert row is not None
        return int(row[0])

    def _extend(self, owner: str, ttl_ms: int, now: int) -> list[str]:
        rows = self._conn.execute(self._sql(
            "UPDATE {s}.leases SET expires_ms = %s WHERE owner = %s AND expires_ms >= %s RETURNING part, partition"),
            (now + ttl_ms, owner, now)).fetchall()
        return self._sorted([str(p) for _, p in rows])

    def acquire(self, owner: str, ttl_ms: int, info: str = "") -> list[str]:
        """Renew this worker's leases and take free or expired partitions up to its fair share."""
        with self._conn.transaction():
            now = self._heartbeat(owner, ttl_ms, info)
            live = self._conn.execute(self._sql(
                "SELECT count(*) FROM {s}.workers WHERE heartbeat_ms >= %s - ttl_ms"), (now,)).fetchone()
            total = len(self.log.partitions())
            share = math.ceil(total / max(1, int(live[0]) if live else 1))
            mine = self._extend(owner, ttl_ms, now)
            if len(mine) > share:
                surplus = mine[share:]
                self._conn.execute(self._sql(
                    "UPDATE {s}.leases SET owner = NULL, expires_ms = 0 WHERE owner = %s AND partition = ANY(%s)"),
                    (owner, surplus))
                return mine[:share]
            if len(mine) < share:
                taken = self._conn.execute(self._sql(
                    "UPDATE {s}.leases SET owner = %s, expires_ms = %s, generation = generation + 1"
                    " WHERE part IN (SELECT part FROM {s}.leases WHERE owner IS NULL OR expires_ms < %s"
                    " ORDER BY part LIMIT %s FOR UPDATE SKIP LOCKED) AND (owner IS NULL OR expires_ms < %s)"
                    " RETURNING partition"), (owner, now + ttl_ms, now, share - len(mine), now)).fetchall()
                mine += [str(p) for (p,) in taken]
            return self._sorted(mine)

    def renew(self, owner: str, ttl_ms: int, info: str = "") -> list[str]:
        """Extend this worker's unexpired leases; returns the partitions it still holds."""
        with self._conn.transaction():
            return self._extend(owner, ttl_ms, self._heartbeat(owner, ttl_ms, info))

    def release(self, owner: str, partitions: list[str] | None = None) -> None:
        """Give back some partitions now (not waiting for the TTL); all of them forgets the worker too."""
        with self._conn.transaction():
            if partitions is None:
                self._conn.execute(self._sql("UPDATE {s}.leases SET owner = NULL, expires_ms = 0 WHERE owner = %s"),
                                   (owner,))
                self._conn.execute(self._sql("DELETE FROM {s}.workers WHERE owner = %s"), (owner,))
            else:
                self._conn.execute(self._sql(
                    "UPDATE {s}.leases SET owner = NULL, expires_ms = 0 WHERE owner = %s AND partition = ANY(%s)"),
                    (owner, partitions))

    def held(self, owner: str) -> list[str]:
        rows = self._conn.execute(self._sql(
            f"SELECT partition FROM {{s}}.leases WHERE owner = %s AND expires_ms >= {_NOW}"), (owner,)).fetchall()
        return self._sorted([str(p) for (p,) in rows])

    def generation(self, partition: str) -> int:
        row = self._conn.execute(self._sql("SELECT generation FROM {s}.leases WHERE partition = %s"),
                                 (partition,)).fetchone()
        return int(row[0]) if row else 0

    def _sorted(self, partitions: list[str]) -> list[str]:
        return sorted(partitions, key=self.log.rank)

    def close(self) -> None:
        self._conn.close()


def log_status(log: PostgresLog, committed: Mapping[str, int]) -> LogStatus:
    """Process workers (heartbeat, live, partitions held), and per partition its holder, head, offset and lag.

    `committed` is the process stage's offsets (`kaon.store.offsets.OffsetStore.all()`), kept in the main store.
    """
    heads = log.heads()
    with log.connect() as conn:
        s = sql.Identifier(log.schema)
        now_row = conn.execute(f"SELECT {_NOW}").fetchone()
        assert now_row is not None
        now = int(now_row[0])
        leases: list[Any] = conn.execute(sql.SQL(
            "SELECT partition, owner, expires_ms FROM {}.leases ORDER BY part").format(s)).fetchall()
        workers: list[Any] = conn.execute(sql.SQL(
            "SELECT owner, heartbeat_ms, started_ms, ttl_ms, info FROM {}.workers ORDER BY owner").format(s)).fetchall()
    held: dict[str, list[str]] = {}
    partitions = []
    for partition, owner, expires in leases:
        live_owner = owner if owner is not None and int(expires) >= now else None
        if live_owner is not None:
            held.setdefault(live_owner, []).append(partition)
        head, done = heads.get(partition, 0), int(committed.get(partition, 0))
        partitions.append(PartitionStatus(partition=partition, owner=live_owner, expires_ms=int(expires),
                                          head_seq=head, committed_seq=done, lag=max(0, head - done)))
    return LogStatus(now_ms=now, partitions=sorted(partitions, key=lambda p: log.rank(p.partition)), workers=[
        WorkerStatus(owner=o, heartbeat_ms=int(hb), started_ms=int(st), live=int(hb) >= now - int(ttl), info=info,
                     partitions=sorted(held.get(o, []), key=log.rank))
        for o, hb, st, ttl, info in workers])
