"""Opening the ingest log for a database URL: SQLite files beside a SQLite store, tables in a PostgreSQL one."""

from pathlib import Path

from kaon.log.base import IngestLog
from kaon.log.postgres import DEFAULT_PARTITIONS, PostgresLog
from kaon.log.sqlite import SqliteLog
from kaon.settings import POSTGRES_SCHEMES


def open_log(database_url: str, log_dir: Path, *, partitions: int = DEFAULT_PARTITIONS) -> IngestLog:
    """The log that goes with the main store at `database_url`.

    `postgresql://…` (or `postgres://…`): `PostgresLog` in that database (schema `kaon_log`, `partitions` fixed
    when it is created); anything else (`sqlite:///…`): `SqliteLog(log_dir)`, one file per partition.
    """
    if database_url.startswith(POSTGRES_SCHEMES):
        return PostgresLog(database_url, partitions=partitions)
    return SqliteLog(log_dir)
