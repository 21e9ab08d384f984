"""Part files of the files destination: encoding, atomic writes, and the event ids already written.

A part is named `part-<first event_id>-<last event_id>.<ext>` (ids zero-padded to 12 digits, so names sort
in id order). It is written as a hidden temp file (`.part-….tmp`, which Hive, Spark and DuckDB skip),
fsynced, renamed into place (atomic), and the directory fsynced: a reader sees a whole part or none.
"""

import io
import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from kaon.destinations.files_rows import COLUMNS, JSON_COLUMNS, MEMBERSHIP_COLUMNS, moment

PART: Final = re.compile(r"^part-(\d+)-(\d+)\.(jsonl|parquet)$")
STALE_TEMP_S: Final = 3600  # no writer keeps a temp file this long: older ones are left by a crash

_encoder = msgspec.json.Encoder()
_SCHEMA: Final = pa.schema([
    ("event_id", pa.int64()), ("source_message_id", pa.string()), ("event_type", pa.string()),
    ("event_name", pa.string()), ("timestamp", pa.timestamp("ms", tz="UTC")), ("timestamp_ms", pa.int64()),
    ("mpid", pa.string()), ("workspace_id", pa.string()), ("input_id", pa.string()),
    ("environment", pa.string()), ("identities", pa.string()), ("user_attributes", pa.string()),
    ("attributes", pa.string()), ("data", pa.string()),
])
_MEMBERSHIP_SCHEMA: Final = pa.schema([
    ("event_id", pa.int64()), ("source_message_id", pa.string()), ("audience_id", pa.string()),
    ("audience_name", pa.string()), ("mpid", pa.string()), ("action", pa.string()), ("cause", pa.string()),
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("timestamp_ms", pa.int64()), ("identities", pa.string()),
])


def part_name(event_ids: Iterable[int], extension: str) -> str:
    ids = sorted(event_ids)
    return f"part-{ids[0]:012d}-{ids[-1]:012d}.{extension}"


def encode_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(_encoder.encode(row) + b"\n" for row in rows)


def encode_parquet(rows: list[dict[str, Any]], *, memberships: bool = False) -> bytes:
    """Parquet with a native UTC timestamp column and JSON columns as JSON text (event rows, or membership rows)."""
    names = MEMBERSHIP_COLUMNS if memberships else COLUMNS
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for row in rows:
        for name in names:
            value = row[name]
            if name in JSON_COLUMNS:
                value = _encoder.encode(value).decode()
            elif name == "timestamp":
                value = moment(row["timestamp_ms"])
            columns[name].append(value)
    sink = io.BytesIO()
    pq.write_table(pa.table(columns, schema=_MEMBERSHIP_SCHEMA if memberships else _SCHEMA), sink,
                   compression="zstd")
    return sink.getvalue()


def ids_in(path: Path) -> set[int]:
    if path.suffix == ".parquet":
        return {int(v) for v in pq.read_table(path, columns=["event_id"]).column(0).to_pylist()}
    with path.open("rb") as lines:
        return {int(json.loads(line)["event_id"]) for line in lines if line.strip()}


def written_ids(partition: Path, low: int, high: int) -> set[int]:
    """Event ids in [low, high] already in this partition: only parts whose id range overlaps are read."""
    found: set[int] = set()
    if not partition.is_dir():
        return found
    for entry in os.scandir(partition):
        match = PART.match(entry.name)
        if match and int(match[1]) <= high and int(match[2]) >= low:
            found |= ids_in(Path(entry.path))
    return found


def remove_stale_temps(partition: Path) -> None:
    cutoff = time.time() - STALE_TEMP_S
    for entry in os.scandir(partition):
        if entry.name.startswith(".part-") and entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
            Path(entry.path).unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_partition(root: Path, partition: Path) -> None:
    """Create the partition's directories and make their entries durable."""
    if partition.is_dir():
        return
    partition.mkdir(parents=True, exist_ok=True)
    for directory in (partition.parent, root):
        fsync_dir(directory)


def write_atomically(path: Path, payload: bytes) -> None:
    """Temp file, fsync, rename, fsync the directory: a crash leaves at most a hidden temp file."""
    temp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
