"""A throwaway PostgreSQL cluster for the log's tests, and a fresh log schema per test."""

import uuid
from collections.abc import Iterator

import pytest

from kaon.log.postgres import PostgresLog
from support.postgres import PostgresCluster, running_cluster


@pytest.fixture(scope="session")
def log_cluster() -> Iterator[PostgresCluster]:
    with running_cluster() as running:
        yield running


@pytest.fixture
def schema() -> str:
    return f"log_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_log(log_cluster: PostgresCluster, schema: str) -> Iterator[PostgresLog]:
    log = PostgresLog(log_cluster.dsn(), partitions=4, schema=schema)
    yield log
    log.close()
