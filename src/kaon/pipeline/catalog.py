"""Step: observe every kept event, user attribute and identity type into the data catalog."""

from kaon.governance import catalog_store
from kaon.governance.catalog_aggregate import CatalogAggregate
from kaon.pipeline.work import Slice

# How often the step re-reads which attributes already have enough examples (also picks up erasures).
REFRESH_FULL_MS = 30_000


class ObserveCatalog:
    """Aggregates the slice in memory, then writes it with a handful of upserts (never one per event).

    Keeps, per process, what it has read of the catalog (`catalog_store.Known`): in the steady state a slice
    reads nothing and adds to its counts with one statement.
    """

    name = "catalog"

    def __init__(self, refresh_full_ms: int = REFRESH_FULL_MS) -> None:
        self.refresh_full_ms = refresh_full_ms
        self._full: dict[tuple[str, str], frozenset[str]] = {}
        self._full_at: int | None = None
        self._known = catalog_store.Known()

    def run(self, work: Slice) -> None:
        if not work.batches:
            return
        if self._full_at is None or work.now_ms - self._full_at >= self.refresh_full_ms:
            self._full = catalog_store.full_attributes(work.tx)
            self._full_at = work.now_ms
        aggregate = CatalogAggregate(self._full)
        for item in work.batches:
            kept = item.kept()
            if not kept and item.batch.events:
                continue  # every event dropped (a duplicate batch): nothing new was observed
            aggregate.add(item.workspace_id, item.input_id, item.entry.entry.received_ms, item.batch, kept)
        catalog_store.write(work.tx, aggregate, self._known)
        # Attributes offered MAX_EXAMPLES distinct examples now have that many stored: stop collecting for them
        # (if this transaction rolls back, the next refresh corrects the set).
        for key, names in aggregate.filled().items():
            self._full[key] = self._full.get(key, frozenset()) | names
