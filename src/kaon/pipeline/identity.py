"""Step: resolve every batch to a profile (`mpid`) from its identities; merges happen here (unify)."""

from kaon.identity.extract import batch_identities
from kaon.identity.policy import IdentityPolicy
from kaon.identity.service import Identity, load_policy
from kaon.pipeline.work import Slice


class ResolveIdentity:
    name = "identity"

    def run(self, work: Slice) -> None:
        policies: dict[str, IdentityPolicy] = {}
        for item in work.batches:
            policy = policies.get(item.workspace_id)
            if policy is None:
                policy = policies[item.workspace_id] = load_policy(work.tx, item.workspace_id)
            identity = Identity(work.tx, item.workspace_id, actor="pipeline", now_ms=work.now_ms, policy=policy)
            resolution = identity.resolver.resolve(
                batch_identities(item.batch, policy), item.entry.entry.received_ms, mpid_hint=item.batch.mpid,
            )
            assert resolution is not None
            item.batch.mpid = resolution.mpid
            if resolution.created:
                work.count(item.entry, "profiles_created")
            if resolution.merged:
                work.count(item.entry, "profiles_merged", len(resolution.merged))
            for _type, _value, reason in resolution.skipped:
                work.count(item.entry, "identity_links_skipped", 1, reason)
                if reason == "suppressed":
                    work.count(item.entry, "identity_suppressed")
