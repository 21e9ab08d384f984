"""The quarantine: data a plan blocked, kept with its original batch and reasons, listed and replayed.

Replay appends, per entry, the blocked part of the original batch (its blocked events, all of its user
attributes and identities) to the `quarantine` partition of the ingest log, marked with
`source_info.replay_request_id = "kaon-quarantine:<id>"`. The process stage then runs it through the whole
pipeline; the plans step deletes the quarantine row in the same transaction as the replay's effects, so a
row replayed twice (two requests, or a crash before the request was recorded) is applied once. Only entries
of that partition, which no client can write to, are honoured as replays.
"""

from pathlib import Path
from typing import Any

import msgspec

from kaon.clock import now_ms
from kaon.governance import quarantine_store
from kaon.log import base as log_base
from kaon.log.base import KIND_MPARTICLE_BATCH, IngestLog, LogEntry
from kaon.log.factory import open_log
from kaon.model import mparticle
from kaon.model.batch import Batch, SourceInfo
from kaon.store.offsets import OffsetStore
from kaon.store.sql import Conn, store_url
from kaon.store.tx import transaction

REPLAY_PARTITION = log_base.REPLAY_PARTITION
REPLAY_PREFIX = "kaon-quarantine:"
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()
_blocked = msgspec.json.Decoder(list[int])


def add(conn: Conn, *, workspace_id: str, input_id: str, plan_id: str, plan_version: int,
        received_ms: int, now: int, reasons: list[dict[str, Any]], blocked_events: list[int], batch: bytes) -> int:
    return quarantine_store.add(conn, workspace_id=workspace_id, input_id=input_id, plan_id=plan_id,
                                plan_version=plan_version, received_ms=received_ms, now=now, reasons=reasons,
                                blocked_events=blocked_events, batch=batch)


def take(conn: Conn, workspace_id: str, quarantine_id: int) -> bool:
    """Remove a row whose replay is being applied; False when it was already applied (or never existed)."""
    return quarantine_store.take(conn, workspace_id, quarantine_id)


def replay_id(batch: Batch, partition: str) -> int | None:
    """The quarantine row a replayed batch came from (only for entries of the replay partition)."""
    if partition != REPLAY_PARTITION or batch.source_info is None:
        return None
    marker = batch.source_info.replay_request_id or ""
    if not marker.startswith(REPLAY_PREFIX) or not marker[len(REPLAY_PREFIX):].isdigit():
        return None
    return int(marker[len(REPLAY_PREFIX):])


def replay_body(batch_json: bytes, blocked_events: list[int], quarantine_id: int) -> bytes:
    """What a replay sends: the original batch minus the events that were stored the first time."""
    batch = mparticle.decode_batch(batch_json, check_limits=False)
    batch.events = [batch.events[i] for i in blocked_events if i < len(batch.events)]
    if batch.source_info is None:
        batch.source_info = SourceInfo()
    batch.source_info.replay_request_id = f"{REPLAY_PREFIX}{quarantine_id}"
    return _json.encode(batch)


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    qid, input_id, plan_id, version, received, quarantined, reasons, _blocked_events, batch, requested = row
    return {"id": qid, "input_id": input_id, "plan_id": plan_id, "plan_version": version,
            "received_unixtime_ms": received, "quarantined_unixtime_ms": quarantined,
            "reasons": _decode.decode(reasons), "replay_requested_unixtime_ms": requested,
            "batch": _decode.decode(bytes(batch))}


class QuarantineStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def page(self, limit: int, cursor: int | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; the cursor is the last id seen."""
        rows = quarantine_store.page(self.conn, self.ws, limit + 1, cursor)
        entries = [_entry(r) for r in rows[:limit]]
        return entries, str(rows[limit - 1][0]) if len(rows) > limit else None

    def count(self) -> int:
        return quarantine_store.count(self.conn, self.ws)

    def replay(self, log: IngestLog | Path, ids: list[int] | None) -> list[int]:
        """Append replays of these rows (None: every row) to the log; returns the ids queued.

        `log` is the ingest log (`kaon.log.factory.open_log`); a Path is the log directory of this store (the
        store's own log is opened: files there beside SQLite, the `kaon_log` tables of a PostgreSQL store).
        """
        queued: list[int] = []
        target: IngestLog = open_log(store_url(self.conn), log) if isinstance(log, Path) else log
        try:
            # This partition has no long-lived writer: drop what the process stage has already applied.
            target.truncate(REPLAY_PARTITION, OffsetStore(self.conn).get(REPLAY_PARTITION))
            for rows in quarantine_store.for_replay(self.conn, self.ws, ids):
                if not rows:
                    continue
                target.append_to(REPLAY_PARTITION, [
                    LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=self.ws, input_id=input_id, received_ms=received,
                             body=replay_body(bytes(batch), _blocked.decode(blocked), qid))
                    for qid, input_id, received, blocked, batch in rows])
                done = [int(r[0]) for r in rows]
                with transaction(self.conn):
                    quarantine_store.mark_replay_requested(self.conn, done, now_ms())
                queued.extend(done)
        finally:
            if isinstance(log, Path):
                target.close()  # only the log opened here
        return queued
