"""Step: decode log entries into canonical batches (mParticle and Segment), record rejections."""

import logging

import msgspec

from kaon.log import base as log
from kaon.log.base import StoredEntry
from kaon.messages import RejectionRecord
from kaon.model import mparticle, segment
from kaon.model.batch import Batch
from kaon.model.errors import PayloadError
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


def decode_entry(stored: StoredEntry) -> list[Batch]:
    """The canonical batches of one accepted log entry, normalised (raises PayloadError)."""
    entry = stored.entry
    seed = f"{stored.partition}:{stored.seq}"
    if entry.kind.startswith(log.KIND_SEGMENT_PREFIX):
        payload = segment.decode_segment(entry.kind.removeprefix(log.KIND_SEGMENT_PREFIX), entry.body)
        batches = segment.to_batches(payload, entry.received_ms, entry.ip)
        for batch in batches:
            mparticle.normalize(batch, received_ms=entry.received_ms, ip=entry.ip,
                                channel=batch.source_info.channel if batch.source_info and
                                batch.source_info.channel else "server_to_server", seed=seed)
        return batches
    channel = _CHANNELS.get(entry.kind)
    if channel is None:
        raise PayloadError("UNKNOWN_LOG_ENTRY", f"unknown log entry kind {entry.kind!r}")
    if entry.kind in (log.KIND_MPARTICLE_BATCH, log.KIND_WEB_BATCH):
        raw = [mparticle.decode_batch(entry.body, check_limits=False)]
    else:
        raw = mparticle.decode_bulk(entry.body, check_limits=False)
    out = []
    for index, batch in enumerate(raw):
        mparticle.normalize(batch, received_ms=entry.received_ms, ip=entry.ip, channel=channel,
                            seed=f"{seed}:{index}")
        if entry.kind == log.KIND_MPARTICLE_HISTORICAL and batch.source_info is not None:
            batch.source_info.is_historical = True
        out.append(batch)
    return out


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
                batches = decode_entry(stored)
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
            for batch in batches:
                work.count(stored, "batches_received")
                work.count(stored, "events_received", len(batch.events))
                work.batches.append(WorkBatch(
                    entry=stored, workspace_id=entry.workspace_id or "", input_id=entry.input_id or "",
                    batch=batch, keep=[True] * len(batch.events),
                ))
