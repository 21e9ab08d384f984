"""Erasure outside the main store: the ingest log partitions, and rows the files and PostgreSQL outputs wrote."""

import json
import os
import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from kaon.log.base import IngestLog
from kaon.log.sqlite import SqliteLog
from kaon.store.outputs import Output
from kaon.store.subject import Subject

_PARTITION = re.compile(r"dt=\d{4}-\d{2}-\d{2}")
_PART = re.compile(r"part-\d{12}-\d{12}\.(jsonl|parquet)")
_TEMP = re.compile(r"\.part-.*\.tmp")
_MPID = re.compile(r'"mpid"\s*:\s*"?(-?\d+)')


def _matches(text: str, needles: list[str], mpids: set[str] | None = None) -> bool:
    lowered = text.lower()
    # Needles are whole JSON strings in each spelling (Subject.needles): exact values, never substrings.
    if any(n in lowered for n in needles):
        return True
    return mpids is not None and any(m in mpids for m in _MPID.findall(text))  # a batch naming their profile by mpid


def scrub_log(log: IngestLog | Path, subject: Subject) -> int:
    """Delete not-yet-truncated ingest log entries that hold any of the person's identity values.

    Through the log's own interface (`IngestLog.scrub`); a Path is the SQLite log in that directory. Appends
    go on meanwhile and are never lost. Entries match on strong identifiers (identity values, or a batch `mpid`
    of one of their profiles) only, never on attribute values; only this workspace's entries (and
    unauthenticated rejections, which belong to no workspace).
    """
    needles, mpids = subject.needles(), {str(m) for m in subject.mpids}
    if not (needles or mpids):
        return 0
    if isinstance(log, Path):
        opened = SqliteLog(log)
        try:
            return scrub_log(opened, subject)
        finally:
            opened.close()
    return log.scrub(subject.workspace_id,
                     lambda body: _matches(body.decode("utf-8", "replace"), needles, mpids))


def _row_is_theirs(row: dict[str, Any], line: str, subject: Subject, mpids: set[str], ids: set[int]) -> bool:
    return row.get("event_id") in ids or str(row.get("mpid")) in mpids or _matches(line, subject.needles())


def _replace(path: Path, payload: bytes | None) -> None:
    if payload is None:
        path.unlink()
        return
    temp = path.with_name(f".{path.name}.dsr.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _scrub_jsonl(path: Path, subject: Subject, mpids: set[str], ids: set[int]) -> int:
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and not _row_is_theirs(json.loads(line), line, subject, mpids, ids)]
    if len(kept) != len([line for line in lines if line.strip()]):
        _replace(path, "".join(f"{line}\n" for line in kept).encode() if kept else None)
    return len(lines) - len(kept)


def _scrub_parquet(path: Path, subject: Subject, mpids: set[str], ids: set[int]) -> int:
    import io

    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pq.read_table(path)
    rows = table.to_pylist()
    keep = [not _row_is_theirs(r, json.dumps(r, default=str), subject, mpids, ids) for r in rows]
    if all(keep):
        return 0
    if any(keep):
        out = io.BytesIO()
        pq.write_table(table.filter(keep), out, compression="zstd")
        _replace(path, out.getvalue())
    else:
        _replace(path, None)
    return keep.count(False)


def scrub_files(output: Output, subject: Subject) -> int:
    """Rewrite (or remove) the part files of a files output that hold the person's rows."""
    root = Path(str(output.settings.get("directory", "")))
    if not root.is_dir():
        return 0
    mpids, ids = {str(m) for m in subject.mpids}, set(subject.event_ids)
    removed = 0
    # Only files Kaon wrote: `<table>/dt=YYYY-MM-DD/part-<first>-<last>.<ext>` and their temporaries.
    for path in sorted(root.glob("*/dt=*/*")):
        if not path.is_file() or path.is_symlink() or not _PARTITION.fullmatch(path.parent.name):
            continue
        if _TEMP.fullmatch(path.name):
            path.unlink()  # a crashed write's leftover; the part is written again on redelivery
        elif not _PART.fullmatch(path.name):
            continue
        elif path.suffix == ".jsonl":
            removed += _scrub_jsonl(path, subject, mpids, ids)
        elif path.suffix == ".parquet":
            removed += _scrub_parquet(path, subject, mpids, ids)
    return removed


def scrub_postgres(output: Output, subject: Subject) -> int:
    """Delete the person's rows from every table of a PostgreSQL output's schema (by mpid and event id)."""
    schema = str(output.settings.get("schema", "kaon"))
    mpids, ids = [str(m) for m in subject.mpids], list(subject.event_ids)
    patterns = ["%" + n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                for n in subject.needles()]
    removed = 0
    with psycopg.connect(str(output.settings["dsn"]), connect_timeout=10, application_name="kaon-dsr") as conn:
        tables: dict[str, set[str]] = {}
        for table, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s"
                " AND column_name IN ('mpid', 'event_id', 'identities')", (schema,)):
            tables.setdefault(str(table), set()).add(str(column))
        for table, columns in sorted(tables.items()):
            if "mpid" not in columns:
                continue
            # Event tables hold event_id; the audience tables (audience_memberships, ...) only mpid and identities.
            tests = [sql.SQL("mpid = ANY(%s)")]
            args: list[Any] = [mpids]
            if "event_id" in columns:
                tests.append(sql.SQL("event_id = ANY(%s)"))
                args.append(ids)
            if "identities" in columns:
                tests.append(sql.SQL("lower(identities::text) LIKE ANY(%s)"))
                args.append(patterns)
            cursor = conn.execute(sql.SQL("DELETE FROM {}.{} WHERE {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.SQL(" OR ").join(tests)), args)
            removed += cursor.rowcount
    return removed
