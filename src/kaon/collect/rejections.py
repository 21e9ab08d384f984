"""Recording refused requests in the ingest log (sampled, with counts), so a person can see why."""

import time

import msgspec

from kaon.collect.auth import InputInfo
from kaon.collect.errors import CollectError
from kaon.collect.http import Scope
from kaon.log.base import KIND_REJECTION, LogEntry
from kaon.log.group_commit import GroupCommitter
from kaon.messages import RejectionRecord

SAMPLES_PER_SECOND = 100
SAMPLE_BYTES = 2048
# Requests refused before their body is read (unknown paths, CORS) are sampled as their request line.
REQUEST_LINE_BYTES = 256
# Distinct (input, code, message) counts kept between flushes; past it, messages are merged, so a flood of
# distinct paths costs bounded memory.
MAX_OVERFLOW_KEYS = 1000
MERGED_MESSAGE = "(more distinct refusals this second than kept apart)"

_encoder = msgspec.json.Encoder()
# (workspace_id, input_id, status, code, message) → count
_Key = tuple[str | None, str | None, int, str, str]


class Rejections:
    def __init__(self, committer: GroupCommitter) -> None:
        self._committer = committer
        self._second = 0
        self._sampled = 0
        self._overflow: dict[_Key, int] = {}

    def record(self, info: InputInfo | None, error: CollectError, body: bytes | None, received_ms: int) -> None:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._sampled = second, 0
        key: _Key = (info.workspace_id if info else None, info.id if info else None, error.status, error.code,
                     error.message)
        if self._sampled >= SAMPLES_PER_SECOND:
            if key not in self._overflow and len(self._overflow) >= MAX_OVERFLOW_KEYS:
                key = (key[0], key[1], key[2], key[3], MERGED_MESSAGE)
            self._overflow[key] = self._overflow.get(key, 0) + 1
            return
        self._sampled += 1
        sample = None if body is None else body[:SAMPLE_BYTES].decode("utf-8", "replace")
        self._append(key, 1, sample, received_ms)

    def record_request(self, scope: Scope, error: CollectError, received_ms: int) -> None:
        """A refusal decided from the request line alone: its sample is `METHOD path?query` (bounded)."""
        query = scope.get("query_string", b"")[:REQUEST_LINE_BYTES]
        line = f"{scope['method']} {scope['path']}" + (f"?{query.decode('latin-1')}" if query else "")
        self.record(error.input, error, line[:REQUEST_LINE_BYTES].encode(), received_ms)

    def flush(self, received_ms: int) -> None:
        """Write the counts of rejections that were over the sampling budget (called every second)."""
        overflow, self._overflow = self._overflow, {}
        for key, count in overflow.items():
            self._append(key, count, None, received_ms)

    def _append(self, key: _Key, count: int, sample: str | None, received_ms: int) -> None:
        workspace_id, input_id, status, code, message = key
        record = RejectionRecord(status=status, code=code, message=message, count=count, sample=sample)
        self._committer.append_nowait(LogEntry(
            kind=KIND_REJECTION, workspace_id=workspace_id, input_id=input_id, received_ms=received_ms,
            body=_encoder.encode(record),
        ))
