"""The ingest log interface: writers append entries durably; readers read a partition after an offset.

`IngestLog` is the whole log as every part of Kaon other than collect's hot path sees it (one object, all
partitions); `kaon.log.factory.open_log` returns the SQLite or PostgreSQL one for a database URL:

    append(entries)                  route each entry to its partition (by `user_key`), one durable commit
    append_to(partition, entries)    append to a named partition (the quarantine replay partition)
    partitions() / read(partition, after_seq, limit) / truncate(partition, upto_seq)
    scrub(workspace_id, matches)     delete the entries of a workspace (and of no workspace) whose body matches
    close()

`LogWriter`/`LogReader` are the narrower pieces `kaon serve` wires today (one writer per SQLite partition).
Nothing outside `kaon.log` opens the log's files or tables.
"""

from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

KIND_MPARTICLE_BATCH = "mparticle_batch"
KIND_MPARTICLE_BULK = "mparticle_bulk"
KIND_MPARTICLE_HISTORICAL = "mparticle_historical"
KIND_WEB_BATCH = "web_batch"
KIND_SEGMENT_PREFIX = "segment_"
KIND_REJECTION = "rejection"
# The partition quarantine replays are appended to: no client can write to it (kaon.governance.quarantine).
REPLAY_PARTITION = "quarantine"


class LogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What collect appends: the accepted request body as received (decompressed), and where it came from."""

    kind: str
    workspace_id: str | None
    input_id: str | None
    received_ms: int
    ip: str | None = None
    body: bytes = b""
    # Routes the entry to a partition (with the workspace) so one user's entries stay in order. Routing only:
    # it is not stored (it may be an identity value; the body is what is kept, and what erasure scrubs).
    user_key: str | None = None


class StoredEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A log entry read back, with its partition and sequence number (the consumer offset)."""

    partition: str
    seq: int
    entry: LogEntry


class LogWriter(Protocol):
    """One partition's single writer."""

    @property
    def partition(self) -> str: ...

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append entries in one durable commit; returns only when they survive a crash."""

    def truncate(self, upto_seq: int) -> int:
        """Drop entries with seq <= upto_seq (already processed); returns how many."""

    def close(self) -> None: ...


class Appender(Protocol):
    """What group commit needs: one durable append of a group of entries."""

    def append(self, entries: Sequence[LogEntry]) -> None: ...


class LogReader(Protocol):
    """Reads every partition; the consumer keeps its own offsets."""

    def partitions(self) -> list[str]: ...

    def read(self, partition: str, after_seq: int, limit: int) -> list[StoredEntry]: ...

    def close(self) -> None: ...


class IngestLog(Protocol):
    """The whole ingest log: every partition, for collect, the process stage, DSR and quarantine replay."""

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append entries, each to its partition, in one durable commit; returns only when they survive a crash."""

    def append_to(self, partition: str, entries: Sequence[LogEntry]) -> None:
        """Append entries to one named partition (e.g. REPLAY_PARTITION) in one durable commit."""

    def partitions(self) -> list[str]: ...

    def read(self, partition: str, after_seq: int, limit: int) -> list[StoredEntry]:
        """Entries of a partition with seq > after_seq in seq order; a later read never finds one it skipped."""

    def truncate(self, partition: str, upto_seq: int) -> int:
        """Drop a partition's entries with seq <= upto_seq (already processed); returns how many."""

    def scrub(self, workspace_id: str, matches: Callable[[bytes], bool]) -> int:
        """Delete the not-yet-truncated entries of this workspace (or of none) whose body matches; how many."""

    def close(self) -> None: ...
