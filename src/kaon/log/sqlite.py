"""The ingest log on SQLite: one file per partition (one writer each), WAL, fsync on every commit.

`SqliteLog(directory)` is the whole log (`kaon.log.base.IngestLog`); `SqliteLogWriter`/`SqliteLogReader` are
its pieces. One machine, so `append` writes every entry to partition "0" whatever its `user_key`.
"""

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from kaon.log.base import LogEntry, StoredEntry
from kaon.log.errors import LogMismatch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    workspace_id TEXT,
    input_id TEXT,
    received_ms INTEGER NOT NULL,
    ip TEXT,
    body BLOB NOT NULL
)
"""
_PREFIX = "ingest-"
DEFAULT_PARTITION = "0"  # the partition `kaon serve` writes (kaon.runtime.PARTITION)
_log = logging.getLogger("kaon.log")


def _open(path: Path, readonly: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsynced at every commit, so an acknowledged append survives power loss.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(_SCHEMA)
    return conn


class SqliteLogWriter:
    """Appends to `<dir>/ingest-<partition>.db`."""

    def __init__(self, directory: Path, partition: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._partition = partition
        self._conn = _open(directory / f"{_PREFIX}{partition}.db")
        self._lock = threading.Lock()

    @property
    def partition(self) -> str:
        return self._partition

    def append(self, entries: Sequence[LogEntry]) -> None:
        rows = [(e.kind, e.workspace_id, e.input_id, e.received_ms, e.ip, e.body) for e in entries]
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT INTO entries(kind, workspace_id, input_id, received_ms, ip, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                # On a full disk SQLite may already have rolled back; a second error from ROLLBACK must neither
                # hide the real one (`database or disk is full`, `disk I/O error`) nor leave a transaction open
                # that would fail every later append.
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise

    def align(self, committed: int) -> None:
        """Check this partition against the consumer's committed offset before the first append.

        AUTOINCREMENT never reuses a number, so the log the offset was read from has a sequence at or past it.
        A log behind the offset was replaced (a deleted or restored file): its new entries would be numbered at
        or below the offset and skipped, acknowledged but never processed. An empty replacement starts a new
        epoch (numbering continues after the offset); one holding entries is refused, naming both numbers.
        """
        with self._lock:
            row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
            high = max(int(row[0]) if row else 0,
                       int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()[0]))
            if high >= committed:
                return
            held = int(self._conn.execute("SELECT count(*) FROM entries").fetchone()[0])
            if held:
                raise LogMismatch(
                    f"ingest log partition {self._partition!r} ends at sequence {high} but the main store has "
                    f"processed this partition up to {committed}: the log file was replaced. Its {held} entries "
                    f"would be skipped, so Kaon will not start. Run `kaon log accept-epoch` to renumber them after "
                    f"{committed} (they are then processed), move the file aside to start an empty epoch, or "
                    f"restore the log the main store was reading.")
            self._conn.execute("BEGIN")
            try:
                if row is None:
                    self._conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('entries', ?)", (committed,))
                else:
                    self._conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'entries'", (committed,))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            _log.warning("ingest log partition %r is new (sequence %d, processed up to %d): new epoch starts at %d",
                         self._partition, high, committed, committed + 1)

    def continue_after(self, committed: int) -> int:
        """Renumber every entry, in order, to follow `committed`: a replaced log accepted as a new epoch.

        The consumer then processes them all (`kaon log accept-epoch`). Returns how many were renumbered.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                low = self._conn.execute("SELECT min(seq) FROM entries").fetchone()[0]
                count = int(self._conn.execute("SELECT count(*) FROM entries").fetchone()[0])
                if low is not None and int(low) <= committed:
                    shift = committed + 1 - int(low)
                    # Through negative numbers, so no intermediate number clashes with an existing one.
                    self._conn.execute("UPDATE entries SET seq = -seq")
                    self._conn.execute("UPDATE entries SET seq = -seq + ?", (shift,))
                high = self._conn.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()[0]
                mark = max(int(high), committed)
                if self._conn.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'entries'").fetchone() is None:
                    self._conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('entries', ?)", (mark,))
                else:
                    self._conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'entries'", (mark,))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            return count

    def truncate(self, upto_seq: int) -> int:
        with self._lock:
            cursor = self._conn.execute("DELETE FROM entries WHERE seq <= ?", (upto_seq,))
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SqliteLogReader:
    """Reads every `ingest-*.db` partition in a directory."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._conns: dict[str, sqlite3.Connection] = {}

    def partitions(self) -> list[str]:
        if not self._directory.exists():
            return []
        names = sorted(p.stem[len(_PREFIX):] for p in self._directory.glob(f"{_PREFIX}*.db"))
        return names

    def _conn(self, partition: str) -> sqlite3.Connection:
        conn = self._conns.get(partition)
        if conn is None:
            conn = _open(self._directory / f"{_PREFIX}{partition}.db")
            self._conns[partition] = conn
        return conn

    def read(self, partition: str, after_seq: int, limit: int) -> list[StoredEntry]:
        rows = self._conn(partition).execute(
            "SELECT seq, kind, workspace_id, input_id, received_ms, ip, body FROM entries"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [
            StoredEntry(
                partition=partition,
                seq=seq,
                entry=LogEntry(
                    kind=kind, workspace_id=ws, input_id=inp, received_ms=received, ip=ip, body=bytes(body)
                ),
            )
            for seq, kind, ws, inp, received, ip, body in rows
        ]

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def _scrub_file(path: Path, workspace_id: str, matches: Callable[[bytes], bool]) -> int:
    """Delete matching entries of one partition file; a short transaction that waits on its writer's lock."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA secure_delete=ON")  # deleted bodies are overwritten, not left in free pages
        doomed = [seq for seq, body in conn.execute(
                  "SELECT seq, body FROM entries WHERE workspace_id = ? OR workspace_id IS NULL", (workspace_id,))
                  if matches(bytes(body))]
        if doomed:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM entries WHERE seq = ?", [(s,) for s in doomed])
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # old page images leave the WAL
        return len(doomed)
    finally:
        conn.close()


class SqliteLog:
    """The ingest log in a directory of partition files: `kaon.log.base.IngestLog` on SQLite."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._writers: dict[str, SqliteLogWriter] = {}
        self._reader = SqliteLogReader(directory)
        self._lock = threading.Lock()

    def writer(self, partition: str = DEFAULT_PARTITION) -> SqliteLogWriter:
        with self._lock:
            found = self._writers.get(partition)
            if found is None:
                found = self._writers[partition] = SqliteLogWriter(self.directory, partition)
            return found

    def append(self, entries: Sequence[LogEntry]) -> None:
        self.writer().append(entries)

    def append_to(self, partition: str, entries: Sequence[LogEntry]) -> None:
        self.writer(partition).append(entries)

    def partitions(self) -> list[str]:
        return self._reader.partitions()

    def read(self, partition: str, after_seq: int, limit: int) -> list[StoredEntry]:
        return self._reader.read(partition, after_seq, limit)

    def truncate(self, partition: str, upto_seq: int) -> int:
        if partition not in self._writers and partition not in self.partitions():
            return 0  # no file: nothing to drop, and none is created
        return self.writer(partition).truncate(upto_seq)

    def scrub(self, workspace_id: str, matches: Callable[[bytes], bool]) -> int:
        if not self.directory.exists():
            return 0
        return sum(_scrub_file(path, workspace_id, matches) for path in sorted(self.directory.glob(f"{_PREFIX}*.db")))

    def close(self) -> None:
        with self._lock:
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()
        self._reader.close()
