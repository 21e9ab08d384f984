"""Step: drop events whose `source_message_id` this workspace already stored within the window."""

from kaon.pipeline.work import Slice
from kaon.store.dedup import DedupStore


class Dedup:
    name = "dedup"

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms

    def run(self, work: Slice) -> None:
        store = DedupStore(work.tx, self.window_ms)
        by_workspace: dict[str, list[str]] = {}
        for item in work.batches:
            ids = by_workspace.setdefault(item.workspace_id, [])
            ids.extend(e.data.source_message_id for e in item.batch.events if e.data.source_message_id)
        fresh = {ws: store.new_ids(ws, ids, work.now_ms) for ws, ids in by_workspace.items()}
        for item in work.batches:
            available = fresh[item.workspace_id]
            for index, event in enumerate(item.batch.events):
                message_id = event.data.source_message_id
                if not message_id:
                    continue
                if message_id in available:
                    available.discard(message_id)  # a second use inside this slice is a duplicate too
                else:
                    item.keep[index] = False
                    work.count(item.entry, "events_duplicate")
