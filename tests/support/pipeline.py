"""A real store, ingest log and workspace for process-stage tests (no server): `stage_parts(root, name)`."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl


@dataclass(frozen=True)
class StageParts:
    db: Database
    writer: SqliteLogWriter  # partition "0"
    reader: SqliteLogReader
    workspace_id: str
    input_id: str  # a `server` input of the workspace


@contextlib.contextmanager
def stage_parts(root: Path, workspace: str) -> Iterator[StageParts]:
    """A SQLite store under `root` with one workspace and server input, and the log beside it (closed after)."""
    db = Database(DatabaseUrl.parse(f"sqlite:///{root / 'kaon.db'}"))
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
