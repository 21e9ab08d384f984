"""What the process stage's steps share: the claimed slice and the batches decoded from it."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kaon.errors import NotFound
from kaon.log.base import StoredEntry
from kaon.model.batch import Batch
from kaon.store.config import ConfigStore
from kaon.store.metrics import CounterKey, hour_of
from kaon.store.sql import Conn


@dataclass
class WorkBatch:
    """One canonical batch from a log entry; steps may drop events (set `keep[i] = False`)."""

    entry: StoredEntry
    workspace_id: str
    input_id: str
    batch: Batch
    keep: list[bool]
    batch_id: int | None = None
    # Stored event ids by position in `batch.events` (set by store_events; fan-out uses them).
    event_ids: dict[int, int] = field(default_factory=dict)
    # Consent history rows this batch appended (store_events names the batch in them), and the consent changes it
    # made to the profile, forwarded with its events as mParticle's `system_notifications` (set by profiles).
    consent_history_ids: list[int] = field(default_factory=list)
    system_notifications: list[dict[str, Any]] = field(default_factory=list)
    # The profile's calculated attribute values after this batch (set by the audiences step; forwarded as user
    # attributes, winning over a user attribute of the same name).
    calculated_attributes: dict[str, Any] = field(default_factory=dict)
    # The batch linked, unlinked or merged identities into its profile (set by identity and profiles; the
    # audiences step re-judges identity criteria and tells audience connections to update what they sent).
    identities_changed: bool = False

    def kept(self) -> list[int]:
        return [i for i, k in enumerate(self.keep) if k]


@dataclass(frozen=True)
class DataWarning:
    """Something accepted but not used as sent (an unreadable time, a refused alias): recorded where people look
    (`/api/v1/rejections`, with the answer the request got) by the `quality` step; its code is in
    kaon.pipeline.quality.WARNING_CODES."""

    entry: StoredEntry
    code: str
    message: str


@dataclass
class Slice:
    """A claimed run of log entries from one partition and everything derived from it."""

    tx: Conn
    entries: list[StoredEntry]
    now_ms: int
    batches: list[WorkBatch] = field(default_factory=list)
    counts: Counter[CounterKey] = field(default_factory=Counter)
    warnings: list[DataWarning] = field(default_factory=list)
    # input id → whether its traffic is client-side (the input accepts key-only calls: its key is public).
    client_side_inputs: dict[str, bool] = field(default_factory=dict)

    def client_side(self, item: "WorkBatch") -> bool:
        """True when the batch came through an input that accepts key-only (web) calls, or one deleted since."""
        found = self.client_side_inputs.get(item.input_id)
        if found is None:
            try:
                found = ConfigStore(self.tx).input(item.input_id).allow_key_only
            except NotFound:
                found = True
            self.client_side_inputs[item.input_id] = found
        return found

    def count(self, entry: StoredEntry, metric: str, n: int = 1, reason: str = "") -> None:
        e = entry.entry
        key = (e.workspace_id or "", e.input_id or "", hour_of(e.received_ms), metric, reason)
        self.counts[key] += n

    def warn(self, entry: StoredEntry, code: str, message: str) -> None:
        self.warnings.append(DataWarning(entry, code, message))
