"""Files: events as JSON Lines or Parquet part files, partitioned by date, in a local directory."""

import errno
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Final, Literal

import msgspec

from kaon.activation.membership import membership_of
from kaon.destinations.base import Destination
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.files_parts import (
    encode_jsonl,
    encode_parquet,
    make_partition,
    part_name,
    remove_stale_temps,
    write_atomically,
    written_ids,
)
from kaon.destinations.files_rows import day, event_row, membership_row
from kaon.destinations.outcome import Outcome, SendPolicy, SendResult
from kaon.model.identities import DEVICE_IDENTITY_TYPES, USER_IDENTITY_TYPES

MAX_BATCH: Final = 5000
MEMBERSHIPS: Final = "audience_memberships"  # the table of a sync audience connection's changes
# A wrong path or missing rights will not heal by waiting; a full or failing disk may.
CONFIG_ERRNOS: Final = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST,
                                  errno.ENAMETOOLONG, errno.EINVAL, errno.ELOOP})


class FilesSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    directory: Annotated[str, msgspec.Meta(
        title="Directory", description="Absolute path of the directory the part files go to (created if "
                                       "missing; Kaon needs write access). Not `/`, not inside a system "
                                       "directory (`/etc`, `/usr`, ...), and inside one of `KAON_FILES_ROOTS` "
                                       "(colon-separated) when the operator sets it.",
        examples=["/var/lib/kaon/export"], pattern=r"^/", min_length=2)]
    format: Annotated[Literal["jsonl", "parquet"], msgspec.Meta(
        title="Format", description="`jsonl`: JSON Lines, JSON columns as nested objects and `timestamp` as "
                                    "ISO-8601 UTC text. `parquet`: zstd-compressed Parquet, JSON columns as "
                                    "JSON text and `timestamp` as a UTC timestamp.")] = "jsonl"
    partition_by: Annotated[Literal["date", "event_type+date"], msgspec.Meta(
        title="Partitioning", description="`date`: `<directory>/events/dt=YYYY-MM-DD/`. `event_type+date`: one "
                                          "table per event type, `<directory>/<event_type>/dt=YYYY-MM-DD/`. "
                                          "The date is the event's UTC date.")] = "date"
    batch_size: Annotated[int, msgspec.Meta(
        title="Rows per file", description=f"At most this many rows per part file (a delivery carries at most "
                                           f"{MAX_BATCH} events).", ge=1, le=MAX_BATCH)] = MAX_BATCH

    def __post_init__(self) -> None:
        check_directory(self.directory)


# Trees no export belongs in: a mistaken directory there would have Kaon write, and DSR erasure rewrite, system files.
SYSTEM_TREES: Final = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
                       "/sbin", "/sys", "/usr")
ROOTS_ENV: Final = "KAON_FILES_ROOTS"


def check_directory(directory: str, roots: str | None = None) -> None:
    """Raise ValueError unless `directory` is a normalised absolute path Kaon may own.

    Not `/`, no `.`/`..` segments, not inside a system tree, and inside one of the operator's allowed roots
    (`KAON_FILES_ROOTS`, colon-separated absolute paths) when that is set.
    """
    path = PurePosixPath(directory)
    segments = directory.split("/")
    if not path.is_absolute() or str(path) != directory.rstrip("/") or ".." in segments or "." in segments:
        raise ValueError(f"directory must be a normalised absolute path (no `.` or `..`), got {directory!r}")
    if path == PurePosixPath("/"):
        raise ValueError("directory must not be `/`: Kaon writes and erases part files under it")
    for tree in SYSTEM_TREES:
        if path == PurePosixPath(tree) or path.is_relative_to(tree):
            raise ValueError(f"directory must not be inside the system directory {tree}")
    allowed = [PurePosixPath(r) for r in (os.environ.get(ROOTS_ENV, "") if roots is None else roots).split(":") if r]
    if allowed and not any(path.is_relative_to(root) for root in allowed):
        raise ValueError(f"directory must be inside one of {ROOTS_ENV} ({', '.join(map(str, allowed))})")


def failure(error: OSError) -> SendResult:
    outcome = Outcome.ABORT if error.errno in CONFIG_ERRNOS else Outcome.RETRY
    return SendResult(outcome, f"{type(error).__name__}: {error}")


class Files(Destination):
    name = "files"
    title = "Files (JSON Lines / Parquet)"
    category = "Warehouse"
    description = "Writes events as JSON Lines or Parquet part files, partitioned by date, into a directory " \
                  "that Hive, Spark, DuckDB or a warehouse loader reads directly."
    settings_type = FilesSettings
    policy = SendPolicy(batch_size=MAX_BATCH, max_concurrency=1, timeout_s=120.0)
    audience = True
    identity_types = (*USER_IDENTITY_TYPES, *DEVICE_IDENTITY_TYPES)
    docs_notes = (
        "Layout: `<directory>/<table>/dt=YYYY-MM-DD/part-<first event_id>-<last event_id>.jsonl` (or "
        "`.parquet`), where `<table>` is `events`, or the event type with `event_type+date`; `dt` is a "
        "Hive-style partition key, e.g. DuckDB reads `read_parquet('<directory>/events/*/*.parquet', "
        "hive_partitioning = true)`. Each row holds event_id, source_message_id, event_type, event_name, "
        "timestamp, timestamp_ms, mpid (text), workspace_id, input_id, environment, identities, "
        "user_attributes, attributes (the event's custom attributes) and data (the whole event data). "
        "Durable: a part is written to a hidden temp file (`.part-….tmp`), fsynced and renamed, so a crash "
        "never leaves a half part visible (temp files older than an hour are removed on the next write). "
        "Idempotent: before writing, the parts of the partition whose id range overlaps the batch are read "
        "and events already there are left out, so re-delivery writes no duplicates. Errors: a directory "
        "that cannot be created or written (permission, read-only, not a directory) aborts; other disk "
        "errors (disk full, I/O) are retried."
    )
    mapping_notes = (
        ("audience member added / removed (sync)", "One row in `audience_memberships/dt=<UTC date of the change>/`: "
                                                  "event_id (its delivery job's: unique, the same on a retry), "
                                                  "source_message_id, audience_id, audience_name, mpid, action "
                                                  "(add / delete), cause, timestamp, timestamp_ms, identities; "
                                                  "the current members are the adds not followed by a delete"),
        ("Every event type", "One row in `events/` (or in `<event_type>/`), in the partition of its UTC date"),
        ("custom_event", "event_name = the custom event name; attributes = its custom attributes"),
        ("screen_view", "event_name = the screen name"),
        ("commerce_event", "event_name = the event name or product action (e.g. purchase); products in data"),
        ("user_attribute_change", "event_name empty; the change in data, the new profile in user_attributes"),
    )

    def deliver(self, events: Sequence[DeliveryEvent], settings: Any) -> list[SendResult]:
        assert isinstance(settings, FilesSettings)
        root = Path(settings.directory)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return [failure(error)] * len(events)
        groups: dict[Path, list[int]] = {}
        for position, item in enumerate(events):
            if membership_of(item) is not None:  # a sync audience connection's change
                table = MEMBERSHIPS
            else:
                table = item.event_type if settings.partition_by == "event_type+date" else "events"
            groups.setdefault(root / table / f"dt={day(item.timestamp_ms).isoformat()}", []).append(position)
        results = [SendResult(Outcome.DELIVERED)] * len(events)
        for partition, positions in groups.items():
            try:
                self._write_partition(root, partition, [events[p] for p in positions], settings)
            except OSError as error:
                for position in positions:
                    results[position] = failure(error)
        return results

    def _write_partition(self, root: Path, partition: Path, events: list[DeliveryEvent],
                         settings: FilesSettings) -> None:
        make_partition(root, partition)
        remove_stale_temps(partition)
        ids = [item.event_id for item in events]
        done = written_ids(partition, min(ids), max(ids))
        todo = sorted((item for item in events if item.event_id not in done), key=lambda item: item.event_id)
        extension = settings.format
        memberships = partition.parent.name == MEMBERSHIPS
        for start in range(0, len(todo), settings.batch_size):
            chunk = todo[start:start + settings.batch_size]
            rows = [membership_row(item, change) if memberships and (change := membership_of(item)) is not None
                    else event_row(item) for item in chunk]
            payload = encode_parquet(rows, memberships=memberships) if settings.format == "parquet" \
                else encode_jsonl(rows)
            write_atomically(partition / part_name((item.event_id for item in chunk), extension), payload)


destination = Files()
