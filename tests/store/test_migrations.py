"""Versioned migrations: a new store is created at HEAD, a store of the last release is upgraded with its data,
processes starting together migrate once, and `kaon migrate` reports and runs it — on SQLite and PostgreSQL."""

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kaon.cli import main
from kaon.errors import ConfigError
from kaon.store import migrations
from kaon.store.db import Database, DatabaseUrl, migrate, schema_version
from kaon.store.owners import OWNERS
from support.stores import PostgresStores

RELEASE_0_1_0 = Path(__file__).parent / "fixtures" / "release-0.1.0.sql"
OWNED = {t for ts in OWNERS.values() for t in ts}


def _tables(db: Database) -> set[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    return {str(r[0]) for r in db.conn().execute(sql).fetchall()}


def test_the_migration_files_end_at_head() -> None:
    assert migrations.script_head() == migrations.HEAD
    files = sorted(p.name[:4] for p in (Path(migrations.__file__).parent / "versions").glob("0*.py"))
    assert tuple(files) == migrations.REVISIONS


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}")
    Database(url).conn().execute("UPDATE kaon_schema_version SET version_num = '0999'")
    with pytest.raises(ConfigError, match="0999"):
        Database(url)


def test_a_new_store_is_at_head_with_every_owned_table(database: Database) -> None:
    assert schema_version(database.url) == migrations.HEAD
    assert _tables(database) >= OWNED
    assert migrate(database.url).before == migrations.HEAD  # nothing left to do


def test_an_empty_postgresql_database_is_migrated_from_nothing(postgres_stores: PostgresStores) -> None:
    url = DatabaseUrl.parse(postgres_stores.empty_url())
    assert schema_version(url) is None
    done = migrate(url)
    assert (done.before, done.after, schema_version(url)) == (None, migrations.HEAD, migrations.HEAD)
    db = Database(url)
    assert _tables(db) >= OWNED
    db.close()


def test_a_release_0_1_0_store_is_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "kaon.db"
    old = sqlite3.connect(path)
    old.executescript(RELEASE_0_1_0.read_text())
    old.close()
    url = DatabaseUrl.parse(f"sqlite:///{path}")
    assert schema_version(url) is None

    db = Database(url)

    conn = db.conn()
    assert schema_version(url) == migrations.HEAD
    assert conn.execute("SELECT name FROM workspaces").fetchall() == [("default",)]
    assert conn.execute("SELECT mpid FROM identities WHERE value = 'ann@example.com'").fetchone() == (424242,)
    assert conn.execute("SELECT event_name, body FROM events").fetchall() == [("Play", b"{}")]
    assert conn.execute("SELECT seq FROM log_offsets WHERE partition = '0'").fetchone() == (17,)
    assert "processes" in _tables(db)  # what 0002 adds
    db.close()


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kaon.db'}"
    code = ("import sys; from kaon.store.db import Database, DatabaseUrl;"
            " Database(DatabaseUrl.parse(sys.argv[1])); print('ok')")
    started = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in started]
    assert [p.returncode for p in started] == [0] * 4, results
    assert schema_version(DatabaseUrl.parse(url)) == migrations.HEAD


def test_threads_migrating_one_postgresql_database_together(postgres_stores: PostgresStores) -> None:
    url = DatabaseUrl.parse(postgres_stores.empty_url())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert schema_version(url) == migrations.HEAD


def test_kaon_migrate_checks_then_migrates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert main(["migrate", "--data-dir", data, "--check"]) == 1
    assert "unversioned" in capsys.readouterr().out
    assert main(["migrate", "--data-dir", data, "--json"]) == 0
    assert f'"after": "{migrations.HEAD}"' in capsys.readouterr().out
    assert main(["migrate", "--data-dir", data, "--check", "--json"]) == 0
    assert '"up_to_date": true' in capsys.readouterr().out
