"""The main store on both dialects: `database` is parametrised over SQLite and PostgreSQL.

PostgreSQL: one throwaway cluster per test session (started on first use), one database migrated to HEAD as a
template, and a fresh copy of it per test (`CREATE DATABASE ... TEMPLATE`, a file copy: fast). SQLite: a file in
the test's tmp dir.
"""

import itertools
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from kaon.store.db import Database, DatabaseUrl
from support.postgres import PostgresCluster, running_cluster

DIALECTS = ("sqlite", "postgresql")
TEMPLATE = "kaon_template"


class PostgresStores:
    """Fresh migrated PostgreSQL databases from one cluster."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._cluster: PostgresCluster | None = None
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def cluster(self) -> PostgresCluster:
        with self._lock:
            if self._cluster is None:
                cluster = self._stack.enter_context(running_cluster())
                cluster.sql(f"CREATE DATABASE {TEMPLATE}")
                Database(DatabaseUrl.parse(cluster.dsn(database=TEMPLATE)))  # migrate once
                self._cluster = cluster
            return self._cluster

    def new_url(self) -> str:
        cluster = self.cluster()
        name = f"kaon_{next(self._numbers)}"
        cluster.sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return cluster.dsn(database=name)

    def empty_url(self) -> str:
        """A database with no schema at all (for migration tests)."""
        cluster = self.cluster()
        name = f"kaon_empty_{next(self._numbers)}"
        cluster.sql(f"CREATE DATABASE {name}")
        return cluster.dsn(database=name)

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def postgres_stores() -> Iterator[PostgresStores]:
    stores = PostgresStores()
    yield stores
    stores.close()


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated main store's URL, once per dialect."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kaon.db'}"
    stores: PostgresStores = request.getfixturevalue("postgres_stores")
    return stores.new_url()


@pytest.fixture
def database(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """The main store, once on SQLite and once on PostgreSQL."""
    db = Database(DatabaseUrl.parse(database_url), data_dir=tmp_path)
    yield db
    db.close()


def server_env(request: pytest.FixtureRequest, dialect: str) -> dict[str, str]:
    """The environment of a `kaon serve` whose main store (and ingest log) is on this dialect."""
    if dialect == "sqlite":
        return {}
    from cryptography.fernet import Fernet

    stores: PostgresStores = request.getfixturevalue("postgres_stores")
    return {"KAON_DATABASE_URL": stores.new_url(), "KAON_SECRET_KEY": Fernet.generate_key().decode()}
