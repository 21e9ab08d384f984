"""Step: apply the slice's Segment `alias` calls once every batch of the slice is resolved and stored.

Running after the whole slice (identity, profiles, stored events) makes the result independent of arrival order
inside a slice: an alias before or after the anonymous events it joins, in one bulk request, ends the same.
The semantics are kaon.identity.alias_join's; this step counts (`aliases_applied` by outcome, `alias_refused`
by reason), records each refusal as an `ALIAS_REFUSED_*` warning, and re-points the slice's batches at the
live profile after a merge (so delivery jobs never name a merged-away profile).
"""

from kaon.errors import NotFound
from kaon.identity.alias_join import join
from kaon.identity.policy import IdentityPolicy
from kaon.identity.service import Identity, load_policy
from kaon.model.batch import Batch
from kaon.pipeline.identity import alias_calls, point_at_live_profiles
from kaon.pipeline.work import Slice
from kaon.store.config import ConfigStore


def _delay_ms(work: Slice, workspace_id: str) -> int:
    try:
        hours = ConfigStore(work.tx).settings(workspace_id).get("alias_delay_hours") or 0
    except NotFound:
        return 0
    return int(float(hours) * 3_600_000)


def _target(batch: Batch, identity: Identity) -> int | None:
    return identity.store.live(batch.mpid) if batch.mpid is not None else None


class JoinAliases:
    name = "alias"

    def run(self, work: Slice) -> None:
        policies: dict[str, tuple[IdentityPolicy, int]] = {}
        merged: dict[str, set[int]] = {}
        for item in work.batches:
            calls = alias_calls(item)
            if not calls:
                continue
            if item.workspace_id not in policies:
                policies[item.workspace_id] = (load_policy(work.tx, item.workspace_id),
                                               _delay_ms(work, item.workspace_id))
            policy, delay_ms = policies[item.workspace_id]
            identity = Identity(work.tx, item.workspace_id, actor="pipeline:alias", now_ms=work.now_ms,
                                policy=policy)
            for data in calls:
                target = _target(item.batch, identity)
                assert target is not None, "an alias batch is resolved to a profile before this step"
                for outcome in join(identity, target, data.previous_id, data.user_id, delay_ms=delay_ms,
                                    client_side=work.client_side(item)):
                    if outcome.outcome == "refused":
                        work.count(item.entry, "alias_refused", 1, outcome.reason)
                        work.warn(item.entry, f"ALIAS_REFUSED_{outcome.reason.upper()}", outcome.message)
                        continue
                    work.count(item.entry, "aliases_applied", 1, outcome.outcome)
                    if outcome.outcome == "merged" and outcome.previous_mpid is not None:
                        merged.setdefault(item.workspace_id, set()).add(outcome.previous_mpid)
        if merged:
            point_at_live_profiles(work, merged)
