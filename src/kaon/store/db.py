"""Opening the main store: database URLs, connection settings per dialect, and migrating to the schema's head."""

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from kaon.errors import ConfigError
from kaon.settings import POSTGRES_SCHEMES
from kaon.store import migrations
from kaon.store.postgres import PostgresConn
from kaon.store.sql import POSTGRESQL, SQLITE, Conn, SqliteConn


@dataclass(frozen=True)
class DatabaseUrl:
    dialect: str
    path: Path | None = None  # SQLite: the file
    dsn: str = ""  # PostgreSQL: the libpq URL

    @classmethod
    def parse(cls, url: str) -> "DatabaseUrl":
        if url.startswith("sqlite:///"):
            return cls(SQLITE, path=Path(url.removeprefix("sqlite:///")))
        if url.startswith(POSTGRES_SCHEMES):
            return cls(POSTGRESQL, dsn=url)
        raise ConfigError(f"unsupported database URL {url!r}; expected sqlite:///PATH or postgresql://...")

    @property
    def sqlalchemy_url(self) -> str:
        if self.dialect == SQLITE:
            return f"sqlite:///{self.path}"
        return "postgresql+psycopg://" + self.dsn.split("://", 1)[1]

    def file(self) -> Path:
        """The SQLite file (a PostgreSQL store has none: callers needing a directory use the data dir)."""
        if self.path is None:
            raise ConfigError("this store is on PostgreSQL and has no file; use the data directory")
        return self.path


def schema_version(url: DatabaseUrl) -> str | None:
    """The revision the store is at (None: empty, or made before versioned migrations)."""
    if url.dialect == SQLITE:
        return migrations.sqlite_version(url.file())
    return migrations.postgres_version(url.dsn)


def migrate(url: DatabaseUrl) -> migrations.Migrated:
    """Bring the store to the newest schema (what `kaon migrate`, `serve` and `init` run)."""
    if url.dialect == SQLITE:
        url.file().parent.mkdir(parents=True, exist_ok=True)
    before = schema_version(url)
    if before == migrations.HEAD:
        return migrations.Migrated(before=before, after=before)
    return migrations.upgrade(url.sqlalchemy_url, before)


class Database:
    """The main store. Each thread gets its own connection."""

    def __init__(self, url: DatabaseUrl, *, migrate_schema: bool = True, data_dir: Path | None = None) -> None:
        self.url = url
        self._data_dir = data_dir
        self._local = threading.local()
        self._opened: list[Conn] = []
        self._opened_lock = threading.Lock()
        if migrate_schema:
            migrate(url)

    @property
    def data_dir(self) -> Path:
        """Where this store's files live (keys, DSR results): `KAON_DATA_DIR`, the one given, else beside the file."""
        configured = os.environ.get("KAON_DATA_DIR")
        if configured:
            return Path(configured).resolve()
        if self._data_dir is not None:
            return self._data_dir.resolve()
        return self.url.file().resolve().parent

    @property
    def dialect(self) -> str:
        return self.url.dialect

    def connect(self) -> Conn:
        if self.url.dialect == POSTGRESQL:
            return PostgresConn(self.url.dsn)
        conn = sqlite3.connect(self.url.file(), isolation_level=None, check_same_thread=False, timeout=30,
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
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (each thread opens a new one if it goes on)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()
