"""open_log: the SQLite log beside a SQLite store, the PostgreSQL log in a PostgreSQL one."""

from pathlib import Path

from kaon.log.base import LogEntry
from kaon.log.factory import open_log
from kaon.log.postgres import DEFAULT_PARTITIONS, PostgresLog
from kaon.log.sqlite import SqliteLog
from support.postgres import PostgresCluster


def test_a_sqlite_url_opens_the_log_files(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path / 'kaon.db'}", tmp_path / "log")
    assert isinstance(log, SqliteLog)
    log.append([LogEntry(kind="k", workspace_id="w", input_id="i", received_ms=1, body=b"x", user_key="u")])
    assert (tmp_path / "log" / "ingest-0.db").exists() and log.partitions() == ["0"]
    log.close()


def test_a_postgresql_url_opens_the_log_in_that_database(log_cluster: PostgresCluster, tmp_path: Path) -> None:
    for dsn in (log_cluster.dsn(), log_cluster.dsn().replace("postgresql://", "postgres://")):
        log = open_log(dsn, tmp_path / "log")
        assert isinstance(log, PostgresLog) and log.schema == "kaon_log" and log.count == DEFAULT_PARTITIONS
        log.append_to("quarantine", [LogEntry(kind="k", workspace_id="w", input_id="i", received_ms=1, body=b"x")])
        assert log.read("quarantine", 0, 10)[-1].entry.body == b"x"
        log.close()
    assert not (tmp_path / "log").exists()
