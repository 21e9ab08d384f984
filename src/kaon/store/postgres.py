"""The main store's PostgreSQL connection: the `Conn` the owners use, over psycopg 3 in autocommit mode.

Statements are written once with `?` placeholders (SQLite's); this connection rewrites each to psycopg's `%s`
(outside quoted literals, `%` doubled) once and caches it. Transactions are explicit (`BEGIN`/`COMMIT` from
`kaon.store.tx.transaction`), as on SQLite; `BEGIN IMMEDIATE` is SQLite's way of taking the write lock at once
and is plain `BEGIN` here (PostgreSQL's row locks serialise writers of the same rows).
"""

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq

from kaon.store.sql import POSTGRESQL_DIALECT, Cursor, Dialect


@lru_cache(maxsize=4096)
def translate(statement: str) -> str:
    """`?` → `%s` and `%` → `%%`, except inside '...' literals and "..." identifiers; SQLite-only verbs mapped."""
    if statement.startswith("BEGIN"):
        return "BEGIN"
    out: list[str] = []
    quote = ""
    for char in statement:
        if quote:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class PostgresConn:
    """One psycopg connection (one per thread, like SQLite's) behind the `Conn` protocol."""

    def __init__(self, dsn: str) -> None:
        self.url = dsn
        self._conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)

    @property
    def dialect(self) -> Dialect:
        return POSTGRESQL_DIALECT

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        cursor = self._conn.cursor()
        cursor.execute(translate(sql), tuple(parameters) if parameters else None)
        return cursor

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(translate(sql), [tuple(p) for p in parameters])
        return cursor

    def close(self) -> None:
        self._conn.close()
