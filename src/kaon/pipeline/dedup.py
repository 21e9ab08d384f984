"""Step: drop events whose `source_message_id` this workspace already stored within the window."""

from kaon.pipeline.work import Slice
from kaon.store.dedup import DedupStore

EXPIRE_EVERY_MS = 60_000


class Dedup:
    name = "dedup"

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._expired_at = 0

    def run(self, work: Slice) -> None:
        store = DedupStore(work.tx, self.window_ms)
        if work.now_ms - self._expired_at >= EXPIRE_EVERY_MS:
            store.expire(work.now_ms)  # ids older than the window can never match again
            self._expired_at = work.now_ms
        for item in work.batches:
            for index, event in enumerate(item.batch.events):
                message_id = event.data.source_message_id
                if message_id and not store.first_sighting(item.workspace_id, message_id, work.now_ms):
                    item.keep[index] = False
                    work.count(item.entry, "events_duplicate")
