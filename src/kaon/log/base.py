"""The ingest log interface: writers append entries durably; readers read a partition after an offset."""

from collections.abc import Sequence
from typing import Protocol

import msgspec

KIND_MPARTICLE_BATCH = "mparticle_batch"
KIND_MPARTICLE_BULK = "mparticle_bulk"
KIND_MPARTICLE_HISTORICAL = "mparticle_historical"
KIND_WEB_BATCH = "web_batch"
KIND_SEGMENT_PREFIX = "segment_"
KIND_REJECTION = "rejection"


class LogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What collect appends: the accepted request body as received (decompressed), and where it came from."""

    kind: str
    workspace_id: str | None
    input_id: str | None
    received_ms: int
    ip: str | None = None
    body: bytes = b""


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


class LogReader(Protocol):
    """Reads every partition; the consumer keeps its own offsets."""

    def partitions(self) -> list[str]: ...

    def read(self, partition: str, after_seq: int, limit: int) -> list[StoredEntry]: ...

    def close(self) -> None: ...
