"""Step: observe every kept event, user attribute and identity type into the data catalog."""

from kaon.governance import catalog_store
from kaon.governance.catalog_aggregate import CatalogAggregate
from kaon.pipeline.work import Slice

# How often the step re-reads the stored example values (picks up erasures and other processes' examples).
REFRESH_EXAMPLES_MS = 30_000


class ObserveCatalog:
    """Aggregates the slice in memory, then writes it with a handful of upserts (never one per event).

    Keeps, per process, its buckets and what it has read of the catalog (`catalog_store.Known`): in the steady
    state a slice reads nothing and adds to its counts with one statement.
    """

    name = "catalog"

    def __init__(self, refresh_examples_ms: int = REFRESH_EXAMPLES_MS) -> None:
        self.refresh_examples_ms = refresh_examples_ms
        self._refreshed_at: int | None = None
        self._aggregate = CatalogAggregate()
        self._known = catalog_store.Known()

    def run(self, work: Slice) -> None:
        if not work.batches:
            return
        aggregate = self._aggregate
        aggregate.clear()  # forgets what a slice that failed observed
        if self._refreshed_at is None or work.now_ms - self._refreshed_at >= self.refresh_examples_ms:
            aggregate.refresh(catalog_store.stored_examples(work.tx))
            self._refreshed_at = work.now_ms
        for item in work.batches:
            if item.batch.events and not any(item.keep):
                continue  # every event dropped (a duplicate batch): nothing new was observed
            aggregate.add(item.workspace_id, item.input_id, item.entry.entry.received_ms, item.batch, item.keep)
        catalog_store.write(work.tx, aggregate, self._known)
        aggregate.clear()
