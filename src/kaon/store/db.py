"""Opening the main store: database URLs, SQLite connection settings, schema."""

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from kaon.errors import ConfigError
from kaon.store.schema import SCHEMA, migrate
from kaon.store.sql import Conn, SqliteConn


@dataclass(frozen=True)
class DatabaseUrl:
    dialect: str
    path: Path

    @classmethod
    def parse(cls, url: str) -> "DatabaseUrl":
        if url.startswith("sqlite:///"):
            return cls("sqlite", Path(url.removeprefix("sqlite:///")))
        if url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("PostgreSQL stores are not available yet in this version; use sqlite:///PATH")
        raise ConfigError(f"unsupported database URL {url!r}; expected sqlite:///PATH")


class Database:
    """The main store. Each thread gets its own connection (SQLite connections are per thread)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        url.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self.connect()
        for statement in SCHEMA:
            conn.execute(statement)
        migrate(conn)

    def connect(self) -> Conn:
        conn = sqlite3.connect(self.url.path, isolation_level=None, check_same_thread=False, timeout=30,
                               factory=SqliteConn)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the ingest log is truncated up to committed offsets, so those commits must be durable.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def conn(self) -> Conn:
        """This thread's connection."""
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
        return conn
