"""The ordered list of process-stage steps; a new step is one module plus one line here."""

from kaon.pipeline.dedup import Dedup
from kaon.pipeline.identity import ResolveIdentity
from kaon.pipeline.normalize import Normalize
from kaon.pipeline.profiles import UpdateProfiles
from kaon.pipeline.step import Step
from kaon.pipeline.store_events import StoreEvents


def default_steps(*, dedup_window_ms: int) -> list[Step]:
    return [
        Normalize(),
        Dedup(dedup_window_ms),
        ResolveIdentity(),
        UpdateProfiles(),
        StoreEvents(),
    ]
