"""Versioned migrations of the main store, with Alembic (ADR 0005).

Each revision in `versions/` is numbered (`0001`, `0002`, ...) and names the owner of what it creates. The
version is recorded in the database (`kaon_schema_version`). `migrate()` runs what is missing, under a lock (a
SQLite write transaction, a PostgreSQL advisory lock), so that processes starting together migrate once.
Opening a store that is at `HEAD` costs one query and imports neither Alembic nor SQLAlchemy.
"""

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006")  # oldest first; the files in versions/ (a test checks)
HEAD = REVISIONS[-1]
VERSION_TABLE = "kaon_schema_version"
LOCK_KEY = 4_242_011  # pg_advisory_xact_lock key of the migrator
_HERE = Path(__file__).parent
# Alembic's `context` is one per process: threads of one process migrate one after the other.
_IN_PROCESS = threading.Lock()


@dataclass(frozen=True)
class Migrated:
    before: str | None  # the revision found (None: an unversioned or empty store)
    after: str


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def script_head() -> str:
    """The newest revision among the migration files (must equal HEAD)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None
    return head


def sqlite_version(path: Path) -> str | None:
    if not path.exists():
        return None
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                             (VERSION_TABLE,)).fetchone()
        if found is None:
            return None
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


def postgres_version(dsn: str) -> str | None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone()
        if found is None or found[0] is None:
            return None
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        return None if row is None else str(row[0])


def _engine(sqlalchemy_url: str) -> Any:
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    if not sqlalchemy_url.startswith("sqlite"):
        return create_engine(sqlalchemy_url, poolclass=NullPool)
    engine = create_engine(sqlalchemy_url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi: sqlite3.Connection, _record: object) -> None:
        dbapi.isolation_level = None  # SQLAlchemy emits BEGIN itself (below), so DDL is transactional
        dbapi.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE: the write lock before reading the version, so a second migrator waits and then finds HEAD.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade(sqlalchemy_url: str, before: str | None, target: str = "head") -> Migrated:
    """Run every missing revision up to `target`."""
    from alembic import command

    from kaon.errors import ConfigError

    if before is not None and before not in REVISIONS:
        raise ConfigError(f"the data store's schema is at revision {before!r}, which this Kaon does not know (its "
                          f"newest is {HEAD}): it was written by a newer release; run that release")
    engine = _engine(sqlalchemy_url)
    try:
        with _IN_PROCESS, engine.connect() as connection:
            command.upgrade(_alembic_config(connection), target)
            connection.commit()
    finally:
        engine.dispose()
    return Migrated(before=before, after=HEAD if target == "head" else target)
