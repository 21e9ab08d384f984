"""Step: decode log entries into canonical batches (mParticle and Segment), record rejections."""

import logging

import msgspec

from kaon.log import base as log
from kaon.log.base import StoredEntry
from kaon.messages import RejectionRecord
from kaon.model import event_times, mparticle, segment
from kaon.model.batch import Batch
from kaon.model.errors import PayloadError
from kaon.model.event_times import TimeWarning
from kaon.pipeline.work import Slice, WorkBatch
from kaon.store.metrics import MetricsStore

_log = logging.getLogger("kaon.pipeline")
_rejection = msgspec.json.Decoder(RejectionRecord)

_CHANNELS = {
    log.KIND_MPARTICLE_BATCH: "server_to_server",
    log.KIND_MPARTICLE_BULK: "server_to_server",
    log.KIND_MPARTICLE_HISTORICAL: "server_to_server",
    log.KIND_WEB_BATCH: "javascript",
}


def decode_entry(stored: StoredEntry) -> tuple[list[Batch], list[TimeWarning]]:
    """The canonical batches of one accepted log entry, normalised, and the unreadable times it carried
    (each replaced by the next rule's time); raises PayloadError."""
    entry = stored.entry
    seed = f"{stored.partition}:{stored.seq}"
    if entry.kind.startswith(log.KIND_SEGMENT_PREFIX):
        kind = entry.kind.removeprefix(log.KIND_SEGMENT_PREFIX)
        payload = segment.decode_segment(kind, entry.body)
        warnings = event_times.segment_warnings(payload, is_batch=kind == "batch")
        batches = segment.to_batches(payload, entry.received_ms, entry.ip)
        for batch in batches:
            mparticle.normalize(batch, received_ms=entry.received_ms, ip=entry.ip,
                                channel=batch.source_info.channel if batch.source_info and
                                batch.source_info.channel else "server_to_server", seed=seed)
        return batches, warnings
    channel = _CHANNELS.get(entry.kind)
    if channel is None:
        raise PayloadError("UNKNOWN_LOG_ENTRY", f"unknown log entry kind {entry.kind!r}")
    single = entry.kind in (log.KIND_MPARTICLE_BATCH, log.KIND_WEB_BATCH)
    if single:
        raw = [mparticle.decode_batch(entry.body, check_limits=False)]
    else:
        raw = mparticle.decode_bulk(entry.body, check_limits=False)
    out = []
    warnings = []
    for index, batch in enumerate(raw):
        warnings.extend(event_times.clear_unreadable_times(batch, "$" if single else f"$[{index}]"))
        mparticle.normalize(batch, received_ms=entry.received_ms, ip=entry.ip, channel=channel,
                            seed=f"{seed}:{index}")
        if entry.kind == log.KIND_MPARTICLE_HISTORICAL and batch.source_info is not None:
            batch.source_info.is_historical = True
        out.append(batch)
    return out, warnings


class Normalize:
    name = "normalize"

    def run(self, work: Slice) -> None:
        metrics = MetricsStore(work.tx)
        for stored in work.entries:
            entry = stored.entry
            if entry.kind == log.KIND_REJECTION:
                record = _rejection.decode(entry.body)
                metrics.record_rejection(
                    workspace_id=entry.workspace_id, input_id=entry.input_id, received_ms=entry.received_ms,
                    status=record.status, code=record.code, message=record.message, count=record.count,
                    body=None if record.sample is None else record.sample.encode(),
                )
                work.count(stored, "rejected", record.count, record.code)
                continue
            try:
                batches, warnings = decode_entry(stored)
            except PayloadError as error:
                # Accepted at the door but undecodable now (e.g. after an upgrade): never drop silently.
                _log.error("log entry %s:%s could not be processed: %s", stored.partition, stored.seq, error)
                metrics.record_rejection(
                    workspace_id=entry.workspace_id, input_id=entry.input_id, received_ms=entry.received_ms,
                    status=error.status, code=f"PROCESS_{error.code}", message=error.message, count=1,
                    body=entry.body[:4096],
                )
                work.count(stored, "rejected", 1, f"PROCESS_{error.code}")
                continue
            for warning in warnings:
                work.count(stored, "invalid_timestamps", 1, warning.field)
                work.warn(stored, "INVALID_TIMESTAMP", warning.message())
            for batch in batches:
                work.count(stored, "batches_received")
                work.count(stored, "events_received", len(batch.events))
                work.batches.append(WorkBatch(
                    entry=stored, workspace_id=entry.workspace_id or "", input_id=entry.input_id or "",
                    batch=batch, keep=[True] * len(batch.events),
                ))
