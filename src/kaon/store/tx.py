"""A transaction helper: BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

from collections.abc import Iterator
from contextlib import contextmanager

from kaon.store.sql import Conn


@contextmanager
def transaction(conn: Conn) -> Iterator[Conn]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
