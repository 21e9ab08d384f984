"""The PostgreSQL cluster for the log's tests, and a fresh log schema per test."""

import uuid
from collections.abc import Iterator

import pytest

from kaon.log.postgres import PostgresLog
from support.postgres import PostgresCluster
from support.stores import PostgresStores


@pytest.fixture(scope="session")
def log_cluster(postgres_stores: PostgresStores) -> PostgresCluster:
    """The suite's one throwaway cluster (support.stores), shared with the store tests."""
    return postgres_stores.cluster()


@pytest.fixture
def schema() -> str:
    return f"log_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_log(log_cluster: PostgresCluster, schema: str) -> Iterator[PostgresLog]:
    log = PostgresLog(log_cluster.dsn(), partitions=4, schema=schema)
    yield log
    log.close()
