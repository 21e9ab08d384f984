"""Stores written by an earlier release are brought up to the current schema when opened."""

import sqlite3
from pathlib import Path

from kaon.governance import catalog_store
from kaon.store.db import Database, DatabaseUrl


def test_catalog_counts_keyed_by_text_become_series_and_tallies(tmp_path: Path) -> None:
    path = tmp_path / "kaon.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE catalog_points (workspace_id TEXT NOT NULL, point_id TEXT NOT NULL, point_type TEXT NOT NULL,
            name TEXT NOT NULL, custom_event_type TEXT NOT NULL, PRIMARY KEY (workspace_id, point_id)) WITHOUT ROWID;
        CREATE TABLE catalog_counts (workspace_id TEXT NOT NULL, point_id TEXT NOT NULL, input_id TEXT NOT NULL,
            environment TEXT NOT NULL, attributes TEXT NOT NULL, count INTEGER NOT NULL,
            attribute_count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, point_id, input_id, environment, attributes)) WITHOUT ROWID;
        INSERT INTO catalog_points VALUES ('ws', 'dp_1', 'custom_event', 'Play', 'media');
        INSERT INTO catalog_counts VALUES ('ws', 'dp_1', 'in_web', 'production', '["song"]', 7, 7, 100, 900);
        INSERT INTO catalog_counts VALUES ('ws', 'dp_1', 'in_ios', 'production', '[]', 2, 2, 50, 60);
    """)
    old.commit()
    old.close()

    conn = Database(DatabaseUrl.parse(f"sqlite:///{path}")).conn()

    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'catalog_counts'").fetchone() is None
    point = catalog_store.point(conn, "ws", "dp_1")
    assert (point["count"], point["first_seen_unixtime_ms"], point["last_seen_unixtime_ms"]) == (9, 50, 900)
    assert [(a["name"], a["count"]) for a in point["attributes"]] == [("song", 7)]
    # Opening it again finds nothing left to migrate.
    Database(DatabaseUrl.parse(f"sqlite:///{path}"))
    assert catalog_store.point(conn, "ws", "dp_1")["count"] == 9


def test_profile_attributes_gain_removals_and_keep_their_values(tmp_path: Path) -> None:
    from kaon.identity.store import ProfileStore

    path = tmp_path / "kaon.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE profile_attributes (workspace_id TEXT NOT NULL, mpid INTEGER NOT NULL, name TEXT NOT NULL,
            value TEXT NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (workspace_id, mpid, name)) WITHOUT ROWID;
        INSERT INTO profile_attributes VALUES ('ws', 7, 'tier', '"gold"', 100);
    """)
    old.commit()
    old.close()

    conn = Database(DatabaseUrl.parse(f"sqlite:///{path}")).conn()

    store = ProfileStore(conn, "ws")
    assert store.attributes(7) == {"tier": ("gold", 100)}
    store.delete_attribute(7, "tier", 200)
    store.set_attribute(7, "tier", "silver", 150)  # older than the removal: stays removed
    assert store.attributes(7) == {}
    assert store.attribute_rows(7) == [("tier", None, 200, True)]
