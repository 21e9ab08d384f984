"""The SQL seam: one connection type over SQLite and PostgreSQL, and helpers for the statements they share.

Owners write statements in the subset both dialects run: `?` placeholders (the PostgreSQL connection rewrites
them), `INSERT ... ON CONFLICT (...) DO NOTHING | DO UPDATE`, `RETURNING` instead of `lastrowid`, explicit
lists through `marks()` instead of `json_each(?)`. What cannot be shared (scalar `min`/`max`, JSON functions,
text search in blobs) is chosen from `conn.dialect` inside the owning module, in one place per owner.
"""

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def sqlite(self) -> bool:
        return self.name == SQLITE

    def least(self, *terms: str) -> str:
        """The smallest of several values (SQLite's scalar `min`, PostgreSQL's `least`)."""
        return f"{'min' if self.sqlite else 'least'}({', '.join(terms)})"

    def greatest(self, *terms: str) -> str:
        return f"{'max' if self.sqlite else 'greatest'}({', '.join(terms)})"

    def text(self, column: str) -> str:
        """A text or blob column as text (blobs hold UTF-8 JSON)."""
        return f"CAST({column} AS TEXT)" if self.sqlite else f"convert_from({column}, 'UTF8')"

    def contains(self, haystack: str) -> str:
        """SQL true when the text expression holds the next parameter (case as given)."""
        return f"instr({haystack}, ?) > 0" if self.sqlite else f"strpos({haystack}, ?) > 0"


# Errors that mean "try the same work again" (locked, busy, out of disk, connection lost), in both dialects.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (sqlite3.OperationalError, psycopg.OperationalError)

def contains_any(dialect: Dialect, expression: str, needles: list[str]) -> tuple[str, list[str]]:
    """SQL true when a text expression holds any needle, and its parameters; `1 = 0` when there are none."""
    if not needles:
        return "1 = 0", []
    return "(" + " OR ".join(dialect.contains(expression) for _ in needles) + ")", needles


SQLITE_DIALECT = Dialect(SQLITE)
POSTGRESQL_DIALECT = Dialect(POSTGRESQL)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """What owners use of a connection; `sqlite3.Connection` (via `SqliteConn`) and `PostgresConn` provide it."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...


class SqliteConn(sqlite3.Connection):
    """A plain sqlite3 connection that says its dialect (no per-statement cost)."""

    @property
    def dialect(self) -> Dialect:
        return SQLITE_DIALECT


def store_url(conn: Conn) -> str:
    """The database URL a connection is open on (to open another one on the same store)."""
    if conn.dialect.sqlite:
        path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
        return f"sqlite:///{path}"
    return str(conn.url)  # type: ignore[attr-defined]


def lock_keys(conn: Conn, keys: Iterable[str]) -> None:
    """Hold these keys until the transaction ends, so concurrent writers of the same keys take turns.

    SQLite has one writer at a time already; PostgreSQL takes transaction-level advisory locks, in sorted order
    so that two transactions locking overlapping sets cannot deadlock on them.
    """
    if conn.dialect.sqlite:
        return
    wanted = sorted(set(keys))
    if wanted:
        conn.execute("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT hashtextextended(k, 0) AS k"
                     " FROM unnest(?::text[]) AS k ORDER BY 1) AS sorted_keys", (wanted,))


def secure_delete(conn: Conn) -> None:
    """Make deleted rows unreadable in the file: SQLite zeroes freed pages (PostgreSQL: VACUUM reclaims them)."""
    if conn.dialect.sqlite:
        conn.execute("PRAGMA secure_delete=ON")


def checkpoint(conn: Conn) -> None:
    """Move old page images out of SQLite's WAL after an erasure (nothing to do on PostgreSQL)."""
    if conn.dialect.sqlite:
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def try_singleton_lock(conn: Conn, key: int) -> bool:
    """True when this connection is (now) the one holder of a cluster-wide lock (PostgreSQL advisory lock, held
    until the connection ends — a killed holder frees it); on SQLite there is one process stage: always true."""
    if conn.dialect.sqlite:
        return True
    return bool(conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0])


def rows_limit(limit: int) -> int:
    """A `LIMIT ?` value: negative means every row (SQLite's -1; PostgreSQL refuses negative limits)."""
    return limit if limit >= 0 else 2**62


def marks(values: Sized) -> str:
    """`?, ?, ?` for an explicit list; `NULL` for an empty one (so `x IN (NULL)` matches nothing)."""
    return ", ".join("?" * len(values)) if len(values) else "NULL"


# Longest explicit list one statement binds (SQLite allows 32,766 variables, PostgreSQL 65,535).
MAX_LIST = 10_000


def chunks(values: Iterable[Any], size: int = MAX_LIST) -> Iterator[list[Any]]:
    """Values in lists of at most `size`, for statements that take an explicit list."""
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
