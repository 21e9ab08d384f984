"""The ordered list of process-stage steps; a new step is one module plus one line here."""

from kaon.audiences.backfill import ensure_backfill_worker
from kaon.audiences.schedule import run_due_changes
from kaon.governance.dsr_worker import ensure_worker
from kaon.identity.alias import run_due_aliases
from kaon.pipeline.alias import JoinAliases
from kaon.pipeline.audiences import UpdateAudiences
from kaon.pipeline.catalog import ObserveCatalog
from kaon.pipeline.dedup import Dedup
from kaon.pipeline.fanout import Fanout
from kaon.pipeline.identity import ResolveIdentity
from kaon.pipeline.normalize import Normalize
from kaon.pipeline.plans import ApplyPlans
from kaon.pipeline.profiles import UpdateProfiles
from kaon.pipeline.quality import RecordWarnings
from kaon.pipeline.runner import Chore
from kaon.pipeline.step import Step
from kaon.pipeline.store_events import StoreEvents
from kaon.store.dedup import DedupStore


def default_steps(*, dedup_window_ms: int) -> list[Step]:
    return [
        Normalize(),
        Dedup(dedup_window_ms),
        ApplyPlans(),
        ResolveIdentity(),
        UpdateProfiles(),
        StoreEvents(),
        JoinAliases(),
        UpdateAudiences(),
        ObserveCatalog(),
        Fanout(),
        RecordWarnings(),
    ]


def default_chores(*, dedup_window_ms: int) -> list[Chore]:
    """Timed work of the process stage: due alias requests, expired dedup ids, DSRs, due audience changes, backfills.
    (The audience connections' sync runs in the deliver stage: kaon.delivery.service.)"""
    return [
        run_due_aliases,
        lambda conn, now: DedupStore(conn, dedup_window_ms).expire(now),
        ensure_worker,  # data subject requests run on their own thread (kaon.governance.dsr_worker)
        run_due_changes,  # audience and calculated attribute changes that time brings (kaon.audiences.schedule)
        ensure_backfill_worker,  # activations' backfills run on their own thread (kaon.audiences.backfill)
    ]
