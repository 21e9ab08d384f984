"""The real process stage over a temp SQLite store and ingest log: append entries, process, read what it wrote.

`stage_parts(root, name)` builds the parts (store, log, workspace, server input); `a_pipeline(root)` wraps them
in a `Pipeline` that writes log entries, runs the stage and reads what it stored.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaon.log.base import KIND_MPARTICLE_BULK, KIND_SEGMENT_PREFIX, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_steps
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl
from kaon.store.metrics import MetricsStore

NOW = 1_800_000_000_000
DAY = 86_400_000


@dataclass(frozen=True)
class StageParts:
    db: Database
    writer: SqliteLogWriter  # partition "0"
    reader: SqliteLogReader
    workspace_id: str
    input_id: str  # a `server` input of the workspace


@contextmanager
def stage_parts(root: Path, workspace: str, url: str | None = None) -> Iterator[StageParts]:
    """A store (SQLite under `root`, or the `url` given: the `database_url` fixture) with one workspace and server
    input, and the log beside it (closed after)."""
    db = Database(DatabaseUrl.parse(url or f"sqlite:///{root / 'kaon.db'}"), data_dir=root)
    config = ConfigStore(db.conn())
    made = config.create_workspace(workspace)
    source = config.create_input(made.id, "server", "server").input
    writer = SqliteLogWriter(root / "log", "0")
    reader = SqliteLogReader(root / "log")
    try:
        yield StageParts(db, writer, reader, made.id, source.id)
    finally:
        writer.close()
        reader.close()
        db.close()


@dataclass
class Pipeline:
    db: Database
    writer: SqliteLogWriter
    reader: SqliteLogReader
    workspace_id: str
    input_id: str

    # Writing
    def append(self, kind: str, body: Any, received_ms: int = NOW) -> None:
        self.writer.append([LogEntry(kind=kind, workspace_id=self.workspace_id, input_id=self.input_id,
                                     received_ms=received_ms, ip="1.2.3.4", body=json.dumps(body).encode())])

    def bulk(self, *batches: dict[str, Any]) -> None:
        """One mParticle bulk request (`/v2/bulkevents`)."""
        self.append(KIND_MPARTICLE_BULK, list(batches))

    def segment(self, *calls: dict[str, Any]) -> None:
        """One Segment `/v1/batch` request."""
        self.append(KIND_SEGMENT_PREFIX + "batch", {"batch": list(calls)})

    def identity_settings(self, **settings: Any) -> None:
        ConfigStore(self.db.conn()).set_setting(self.workspace_id, "identity", settings)

    def setting(self, key: str, value: object) -> None:
        ConfigStore(self.db.conn()).set_setting(self.workspace_id, key, value)

    def process(self, slice_size: int = 256, now: int = NOW) -> None:
        ProcessStage(self.db, self.reader, default_steps(dedup_window_ms=DAY), slice_size=slice_size,
                     clock=lambda: now).drain(now + 1)

    # Reading
    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.db.conn().execute(sql, args)]

    def owner(self, identity_type: str, value: str) -> int | None:
        found = self.rows("SELECT mpid FROM identities WHERE workspace_id = ? AND identity_type = ? AND value = ?",
                          self.workspace_id, identity_type, value)
        return int(found[0][0]) if found else None

    def holder(self, identity_type: str, value: str) -> int:
        """The profile holding the identity, which must be held."""
        found = self.owner(identity_type, value)
        assert found is not None, f"{identity_type}={value} is held by no profile"
        return found

    def identities(self, mpid: int) -> set[tuple[str, str]]:
        return {(str(t), str(v)) for t, v in self.rows(
            "SELECT identity_type, value FROM identities WHERE workspace_id = ? AND mpid = ?", self.workspace_id, mpid)}

    def tombstones(self) -> set[int]:
        return {int(r[0]) for r in self.rows(
            "SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IS NOT NULL", self.workspace_id)}

    def events_of(self, mpid: int) -> list[str]:
        """The profile's events by name (else type; identity and attribute changes left out), sorted."""
        return sorted(str(n) for (n,) in self.rows(
            "SELECT COALESCE(event_name, event_type) FROM events WHERE workspace_id = ? AND mpid = ? AND event_type"
            " NOT IN ('user_identity_change', 'user_attribute_change')", self.workspace_id, mpid))

    def event_owners(self) -> dict[str, int]:
        """Each stored event's owner by event name."""
        return {str(name): int(mpid) for name, mpid in self.rows(
            "SELECT event_name, mpid FROM events WHERE workspace_id = ?", self.workspace_id)}

    def event_times(self) -> dict[str, int]:
        return {str(n): int(t) for n, t in self.rows(
            "SELECT source_message_id, timestamp_ms FROM events WHERE workspace_id = ?", self.workspace_id)}

    def attributes(self, mpid: int) -> dict[str, Any]:
        return {str(n): json.loads(v) for n, v in self.rows(
            "SELECT name, value FROM profile_attributes WHERE workspace_id = ? AND mpid = ? AND deleted = 0",
            self.workspace_id, mpid)}

    def merges(self) -> list[tuple[int, int, str]]:
        return [(int(s), int(m), str(r)) for s, m, r in self.rows(
            "SELECT survivor_mpid, merged_mpid, reason FROM merges WHERE workspace_id = ? ORDER BY id",
            self.workspace_id)]

    def counters(self, metric: str) -> dict[str, int]:
        """One hourly counter's totals by reason, over all hours."""
        return {str(r): int(c) for r, c in self.rows(
            "SELECT reason, SUM(count) FROM input_stats WHERE workspace_id = ? AND metric = ? GROUP BY reason",
            self.workspace_id, metric)}

    def warnings(self) -> list[dict[str, Any]]:
        """The rejections list (`/api/v1/rejections`' rows), oldest first."""
        return list(reversed(MetricsStore(self.db.conn()).rejections(self.workspace_id, 1000)))


@contextmanager
def a_pipeline(root: Path, workspace: str = "pipeline", url: str | None = None) -> Iterator[Pipeline]:
    with stage_parts(root, workspace, url) as parts:
        yield Pipeline(parts.db, parts.writer, parts.reader, parts.workspace_id, parts.input_id)
