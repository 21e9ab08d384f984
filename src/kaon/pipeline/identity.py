"""Step: resolve every batch to a profile (`mpid`) from its identities; merges happen here (unify).

A merge later in a slice can make an mpid resolved earlier in the same slice a tombstone (batch 1 creates P1,
batch 2 merges P1 into P0). Every later step writes through `batch.mpid`, so once the whole slice is resolved
each batch is pointed at its live profile: no event, attribute, consent record or delivery job of the slice
ever belongs to a merged-away profile.

Batches from an input that accepts key-only calls (web) resolve client-side (kaon.identity.resolve): a merge
that rule refuses is counted (`identity_merges_refused` by reason) and listed as `IDENTITY_MERGE_REFUSED`.
"""

from kaon.identity.alias_join import previous_identities
from kaon.identity.extract import Identity as IdentityPair
from kaon.identity.extract import batch_identities
from kaon.identity.policy import IdentityPolicy
from kaon.identity.resolve import MERGE_REASONS
from kaon.identity.service import Identity, load_policy
from kaon.identity.store import ProfileStore
from kaon.model.events import Alias, AliasData
from kaon.pipeline.work import Slice, WorkBatch
from kaon.store.sql import lock_keys


def _lock_key(workspace_id: str, kind: str, value: object) -> str:
    return f"{workspace_id}\x1f{kind}\x1f{value}"


class ResolveIdentity:
    name = "identity"

    def run(self, work: Slice) -> None:
        policies: dict[str, IdentityPolicy] = {}
        merged: dict[str, set[int]] = {}
        found = []
        for item in work.batches:
            policy = policies.get(item.workspace_id)
            if policy is None:
                policy = policies[item.workspace_id] = load_policy(work.tx, item.workspace_id)
            found.append((item, policy, batch_identities(item.batch, policy)))
        if not work.tx.dialect.sqlite:
            # Process workers on other partitions may resolve the same identities now: take turns on them.
            lock_keys(work.tx, [key for item, _, identities in found for key in (
                *(_lock_key(item.workspace_id, kind, value) for kind, value in identities),
                *((_lock_key(item.workspace_id, "mpid", item.batch.mpid),) if item.batch.mpid is not None else ()))])
        for item, policy, named in found:
            identity = Identity(work.tx, item.workspace_id, actor="pipeline", now_ms=work.now_ms, policy=policy)
            previous = _alias_previous(item)
            # An alias batch resolves to the user's profile without its previousId (often its own
            # anonymousId): how the previous profile joins is the alias step's decision, by strategy.
            identities = [i for i in named if i not in previous] if previous else named
            resolution = identity.resolver.resolve(
                identities, item.entry.entry.received_ms, mpid_hint=item.batch.mpid,
                client_side=work.client_side(item),
            )
            assert resolution is not None
            item.batch.mpid = resolution.mpid
            item.identities_changed = bool(resolution.linked or resolution.merged)
            if resolution.created:
                work.count(item.entry, "profiles_created")
            if resolution.merged:
                work.count(item.entry, "profiles_merged", len(resolution.merged))
                merged.setdefault(item.workspace_id, set()).update(resolution.merged)
            for other, reason in resolution.refused_merges:
                work.count(item.entry, "identity_merges_refused", 1, reason)
                work.warn(item.entry, "IDENTITY_MERGE_REFUSED",
                          f"batch from a key-only input resolved to profile {resolution.mpid}; profile {other} was "
                          f"not merged into it ({reason}: {MERGE_REASONS[reason]})")
            for _type, _value, reason in resolution.skipped:
                work.count(item.entry, "identity_links_skipped", 1, reason)
                if reason == "suppressed":
                    work.count(item.entry, "identity_suppressed")
        if merged:
            point_at_live_profiles(work, merged)


def alias_calls(item: WorkBatch) -> list[AliasData]:
    """The batch's kept alias events (Segment `alias` calls)."""
    return [event.data for index, event in enumerate(item.batch.events)
            if item.keep[index] and isinstance(event, Alias) and isinstance(event.data, AliasData)]


def _alias_previous(item: WorkBatch) -> set[IdentityPair]:
    """The identities the batch's alias events name as previous (left to the alias step)."""
    return {identity for data in alias_calls(item)
            for identity in previous_identities(data.previous_id, data.user_id)}


def point_at_live_profiles(work: Slice, merged: dict[str, set[int]]) -> None:
    """Point every batch of the slice whose profile was merged away (`merged`, by workspace) at its survivor."""
    live: dict[tuple[str, int], int | None] = {}
    for item in work.batches:
        mpid = item.batch.mpid
        if mpid is None or mpid not in merged.get(item.workspace_id, ()):
            continue
        key = (item.workspace_id, mpid)
        if key not in live:
            live[key] = ProfileStore(work.tx, item.workspace_id).live(mpid)
        survivor = live[key]
        assert survivor is not None, f"merged profile {mpid} has no live survivor"
        item.batch.mpid = survivor
