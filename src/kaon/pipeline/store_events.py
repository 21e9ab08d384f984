"""Step: store each batch's context and its kept events in the event store."""

import msgspec

from kaon.governance.consent_store import ConsentHistory
from kaon.model.events import event_name
from kaon.pipeline.work import Slice, WorkBatch
from kaon.store.events import EventStore, StoredEvent

_encoder = msgspec.json.Encoder()


class StoreEvents:
    name = "store_events"

    def run(self, work: Slice) -> None:
        store = EventStore(work.tx)
        rows: list[StoredEvent] = []
        owners: list[tuple[WorkBatch, int]] = []
        for item in work.batches:
            kept = item.kept()
            if not kept and item.batch.events:
                continue
            batch = item.batch
            context = msgspec.structs.replace(batch, events=[])
            item.batch_id = store.insert_batch(
                item.workspace_id, item.input_id, item.entry.entry.received_ms, _encoder.encode(context)
            )
            if item.consent_history_ids:
                ConsentHistory(work.tx, item.workspace_id).set_batch(item.consent_history_ids, item.batch_id)
            for index in kept:
                event = batch.events[index]
                data = event.data
                rows.append(StoredEvent(
                    workspace_id=item.workspace_id, input_id=item.input_id, batch_id=item.batch_id,
                    mpid=batch.mpid, event_type=event.event_type, event_name=event_name(event),
                    source_message_id=data.source_message_id or "",
                    timestamp_ms=data.timestamp_unixtime_ms or item.entry.entry.received_ms,
                    received_ms=item.entry.entry.received_ms, environment=batch.environment,
                    body=_encoder.encode(event),
                ))
                owners.append((item, index))
            work.count(item.entry, "events_processed", len(kept))
        for (item, index), event_id in zip(owners, store.insert_events(rows), strict=True):
            item.event_ids[index] = event_id
