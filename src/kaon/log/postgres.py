"""The ingest log on PostgreSQL 15: one table partitioned by a user key, per-partition order, group commit.

    log = PostgresLog("postgresql://…", partitions=8)    # kaon.log.base.IngestLog; schema `kaon_log`
    log.append(entries)            # each entry to partition crc32(workspace_id + user_key) % N, one transaction
    log.append_to("quarantine", entries)
    log.partitions()               # ["0", …, "N-1", "quarantine"]
    log.read("3", after_seq, limit) / log.truncate("3", upto_seq) / log.scrub(workspace_id, matches)
    log.heads()                    # {partition: last seq given out}, for lag
    log.connect()                  # a new connection to the log's database (leases use their own)

Any number of writer processes, on any number of machines, may append at once.

**Why a reader never skips an entry.** Sequence numbers are per partition and come from a counter row
(`heads.last_seq`) that the append transaction locks (`SELECT … FOR UPDATE`, in partition order, so two groups
that span partitions cannot deadlock) and bumps before inserting. A `bigserial` would not do: two writers take
numbers 10 and 11, the one holding 11 commits first, a reader reads up to 11 and commits its offset, and 10 —
committed a moment later — is below the offset, never processed. With the counter row, the writer that would
take 11 waits on the row lock until the writer holding 10 has committed (PostgreSQL makes a transaction visible
before it releases its locks), so committed numbers in a partition always form a prefix with no hole a later
commit can fill: whatever snapshot a reader takes, everything below the highest number it sees is already
visible. Writers of one partition are serialised for the span of one transaction (a few ms); that is the cost,
paid once per group, not per entry — a group is one `COPY`.

`user_key` is routing only and not stored. Entries without one go to partition 0 (or round-robin over all
partitions with `spread_unkeyed=True`, when their relative order does not matter).
"""

import itertools
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from kaon.log import postgres_schema
from kaon.log.base import REPLAY_PARTITION, LogEntry, StoredEntry
from kaon.log.errors import UnknownPartition
from kaon.log.postgres_schema import REPLAY_PART, partition_name

DEFAULT_PARTITIONS = 8
DEFAULT_SCHEMA = "kaon_log"
_SCRUB_PAGE = 1000
_COLUMNS = "part, seq, kind, workspace_id, input_id, received_ms, ip, body"


class PostgresLog:
    """`kaon.log.base.IngestLog` on PostgreSQL; thread-safe (one write and one read connection, each locked)."""

    def __init__(self, dsn: str, *, partitions: int = DEFAULT_PARTITIONS, schema: str = DEFAULT_SCHEMA,
                 spread_unkeyed: bool = False, application_name: str = "kaon-log") -> None:
        if partitions < 1:
            raise ValueError("an ingest log needs at least one partition")
        self.dsn, self.schema, self.count = dsn, schema, partitions
        self._application_name = application_name
        self._spread = itertools.count() if spread_unkeyed else None
        self._s = sql.Identifier(schema)
        self._write = self.connect()
        try:
            postgres_schema.create(self._write, schema, partitions)
        except BaseException:
            self._write.close()
            raise
        self._read = self.connect()
        self._write_lock, self._read_lock = threading.Lock(), threading.Lock()

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=10,
                               application_name=self._application_name)

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=self._s)  # statements are constants

    def part_of(self, entry: LogEntry) -> int:
        """The partition number an entry is appended to: stable across processes, machines and restarts."""
        if entry.user_key is None:
            return 0 if self._spread is None else next(self._spread) % self.count
        return zlib.crc32(f"{entry.workspace_id or ''}\x1f{entry.user_key}".encode()) % self.count

    def part(self, partition: str) -> int:
        if partition == REPLAY_PARTITION:
            return REPLAY_PART
        if partition.isdigit() and int(partition) < self.count:
            return int(partition)
        raise UnknownPartition(f"the ingest log has no partition {partition!r} (it has 0..{self.count - 1} and "
                               f"{REPLAY_PARTITION!r})")

    def rank(self, partition: str) -> int:
        """A partition's place in `partitions()` (the replay partition last), for sorting."""
        part = self.part(partition)
        return self.count if part == REPLAY_PART else part

    def partitions(self) -> list[str]:
        return [*(str(p) for p in range(self.count)), REPLAY_PARTITION]

    def append(self, entries: Sequence[LogEntry]) -> None:
        groups: dict[int, list[LogEntry]] = {}
        for entry in entries:
            groups.setdefault(self.part_of(entry), []).append(entry)
        self._append(groups)

    def append_to(self, partition: str, entries: Sequence[LogEntry]) -> None:
        self._append({self.part(partition): list(entries)})

    def _append(self, groups: dict[int, list[LogEntry]]) -> None:
        parts = sorted(p for p, group in groups.items() if group)
        if not parts:
            return
        with self._write_lock, self._write.transaction(), self._write.cursor() as cursor:
            # Locks the partitions' counter rows in order: writers of a partition take turns (module docstring).
            cursor.execute(self._sql("SELECT part, last_seq FROM {s}.heads WHERE part = ANY(%s) ORDER BY part"
                                     " FOR UPDATE"), (parts,))
            heads = {int(p): int(seq) for p, seq in cursor.fetchall()}
            cursor.execute(self._sql("UPDATE {s}.heads SET last_seq = heads.last_seq + v.n"
                                     " FROM unnest(%s::integer[], %s::bigint[]) AS v(part, n)"
                                     " WHERE heads.part = v.part"), (parts, [len(groups[p]) for p in parts]))
            with cursor.copy(self._sql(f"COPY {{s}}.entries ({_COLUMNS}) FROM STDIN")) as copy:
                for part in parts:
                    for offset, e in enumerate(groups[part], start=1):
                        copy.write_row((part, heads[part] + offset, e.kind, e.workspace_id, e.input_id,
                                        e.received_ms, e.ip, e.body))

    def read(self, partition: str, after_seq: int, limit: int) -> list[StoredEntry]:
        with self._read_lock:
            rows = self._read.execute(self._sql(
                "SELECT seq, kind, workspace_id, input_id, received_ms, ip, body FROM {s}.entries"
                " WHERE part = %s AND seq > %s ORDER BY seq LIMIT %s"), (self.part(partition), after_seq, limit)
            ).fetchall()
        return [StoredEntry(partition=partition, seq=int(seq), entry=LogEntry(
                    kind=kind, workspace_id=ws, input_id=inp, received_ms=int(received), ip=ip, body=bytes(body)))
                for seq, kind, ws, inp, received, ip, body in rows]

    def heads(self) -> dict[str, int]:
        """The last sequence number given out in each partition (entries may since have been truncated)."""
        with self._read_lock:
            rows = self._read.execute(self._sql("SELECT part, last_seq FROM {s}.heads ORDER BY part")).fetchall()
        return {partition_name(int(p)): int(seq) for p, seq in rows}

    def truncate(self, partition: str, upto_seq: int) -> int:
        with self._write_lock:
            cursor = self._write.execute(self._sql("DELETE FROM {s}.entries WHERE part = %s AND seq <= %s"),
                                         (self.part(partition), upto_seq))
            return cursor.rowcount

    def scrub(self, workspace_id: str, matches: Callable[[bytes], bool]) -> int:
        """Delete matching entries page by page (appends go on meanwhile), then VACUUM the partitions touched.

        VACUUM makes the deleted rows' space reusable; like any PostgreSQL delete, the bytes may stay on disk
        until overwritten (SQLite's log uses `secure_delete`).
        """
        removed, touched = 0, set()
        for part in [*range(self.count), REPLAY_PART]:
            after = 0
            while True:
                with self._read_lock:
                    rows = self._read.execute(self._sql(
                        "SELECT seq, body FROM {s}.entries WHERE part = %s AND seq > %s"
                        " AND (workspace_id = %s OR workspace_id IS NULL) ORDER BY seq LIMIT %s"),
                        (part, after, workspace_id, _SCRUB_PAGE)).fetchall()
                if not rows:
                    break
                after = int(rows[-1][0])
                doomed = [int(seq) for seq, body in rows if matches(bytes(body))]
                if doomed:
                    with self._write_lock:
                        removed += self._write.execute(self._sql(
                            "DELETE FROM {s}.entries WHERE part = %s AND seq = ANY(%s)"), (part, doomed)).rowcount
                    touched.add(part)
        with self._write_lock:
            for part in sorted(touched):
                table = sql.Identifier(f"entries_p{part}" if part >= 0 else "entries_replay")
                self._write.execute(sql.SQL("VACUUM {}.{}").format(self._s, table))
        return removed

    def close(self) -> None:
        with self._write_lock:
            self._write.close()
        with self._read_lock:
            self._read.close()
