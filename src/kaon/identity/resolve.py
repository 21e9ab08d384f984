"""Resolving a set of identities to one profile under the workspace's strategy and safeguards.

Unify (the default): identities seen together belong to one profile, so a batch that links identities held by
two profiles merges them — unless a unique type (default `customer_id`) would then hold two values. The
batch goes to the profile of its highest-priority identity that does not conflict; conflicting links are
not made. A batch carrying a valid mpid (SDK traffic, resolved by IDSync already) goes to that profile and
merges nothing. The other strategies follow mParticle's IDSync semantics (see docs/identity.md).

A **client-side** resolution (`client_side=True`: a key-only/web credential, whose key is public) follows two
more rules under every strategy (docs/security.md): a profile holding a login id is reached only through that
login id, and another profile is merged in only when the call links it through a device identity (which the
caller can only know by being on that device) and it holds no login id. Merges refused by these rules are
listed in `Resolution.refused_merges`.
"""

from collections.abc import Callable, Sequence

import msgspec

from kaon.governance.dsr_suppress import is_suppressed
from kaon.identity.extract import Identity
from kaon.identity.policy import IdentityPolicy
from kaon.identity.store import ProfileStore
from kaon.model.identities import DEVICE_IDENTITY_TYPES

# Identities that only the device itself knows (a bearer secret of the device), unlike an email or customer id.
DEVICE_TYPES = frozenset(DEVICE_IDENTITY_TYPES) | {"device_application_stamp"}
MERGE_REASONS = {"login_id": "it holds a login id", "not_device_linked": "the call linked it through no device "
                 "identity, only through identities anyone may name"}

# merge(survivor, merged, reason) performs and audits a merge (see kaon.identity.merge).
Merge = Callable[[int, int, str], None]


class Resolution(msgspec.Struct, kw_only=True):
    mpid: int
    created: bool = False
    # Identities of the request that an existing profile already held (IDSync's matched_identities).
    matched: list[Identity] = []
    merged: list[int] = []
    # (type, value, reason) of links not made: unique_conflict, limit, held_elsewhere, suppressed.
    skipped: list[tuple[str, str, str]] = []
    # Client-side calls: (profile, reason) of merges refused: `login_id` (it holds one), `not_device_linked`.
    refused_merges: list[tuple[int, str]] = []
    # Identities this call linked to the profile (new to it).
    linked: list[Identity] = []


def _unique_claims(identities: Sequence[Identity], policy: IdentityPolicy) -> dict[str, str]:
    return {t: v for t, v in identities if t in policy.unique_types}


class Resolver:
    def __init__(self, store: ProfileStore, policy: IdentityPolicy, merge: Merge | None = None) -> None:
        self.store = store
        self.policy = policy
        self.merge = merge

    def _conflicts(self, mpid: int, claims: dict[str, str]) -> bool:
        """True when the profile holds another value of a unique type than `claims` asks for."""
        if self.policy.strategy == "best_match":
            return False
        for identity_type, value in claims.items():
            held = self.store.values_of(mpid, identity_type)
            if held and value not in held:
                return True
        return False

    def _profiles_conflict(self, a: int, b: int) -> bool:
        return self.unique_conflict(a, b) is not None

    def unique_conflict(self, a: int, b: int) -> tuple[str, set[str], set[str]] | None:
        """(type, a's values, b's values) of a unique type the two profiles hold different values of, or None."""
        for identity_type in self.policy.unique_types:
            mine, theirs = self.store.values_of(a, identity_type), self.store.values_of(b, identity_type)
            if mine and theirs and mine != theirs:
                return identity_type, mine, theirs
        return None

    def _is_known(self, mpid: int) -> bool:
        return any(t in self.policy.login_types for t, _, _ in self.store.identities(mpid))

    def _eligible(self, mpid: int, identities: Sequence[Identity], owners: dict[Identity, int],
                  client_side: bool = False) -> bool:
        """Conversion/link/isolation, and every client-side call: a profile holding a login id is returned only
        for that login id."""
        if (self.policy.strategy in ("unify", "best_match") and not client_side) or not self._is_known(mpid):
            return True
        return any(owners.get(i) == mpid for i in identities if i[0] in self.policy.login_types)

    def resolve(
        self,
        identities: Sequence[Identity],
        now_ms: int,
        *,
        mpid_hint: int | None = None,
        create: bool = True,
        link: bool = True,
        client_side: bool = False,
    ) -> Resolution | None:
        """The profile for these identities (created when none fits and `create`), links made when `link`."""
        for _ in range(3):  # a lost race on a link (another writer took the value) resolves again
            result = self._attempt(identities, now_ms, mpid_hint, create, link, client_side)
            if result is not None or not create:
                return result
        raise RuntimeError("identity resolution did not converge")

    def _attempt(
        self, identities: Sequence[Identity], now_ms: int, mpid_hint: int | None, create: bool, link: bool,
        client_side: bool = False,
    ) -> Resolution | None:
        store, policy = self.store, self.policy
        owners = store.owners(identities)
        claims = _unique_claims(identities, policy)
        login_ids = [i for i in identities if i[0] in policy.login_types]
        candidates: list[int] = []
        hinted = store.live(mpid_hint) if mpid_hint is not None else None
        if hinted is not None:
            candidates.append(hinted)
        for identity in identities:
            owner = owners.get(identity)
            if owner is not None and owner not in candidates:
                candidates.append(owner)
        if policy.strategy in ("profile_link", "profile_isolation") and login_ids:
            # A login id decides alone: its owner, or a new profile; anonymous profiles are left as they are.
            login_owner = next((owners[i] for i in login_ids if i in owners), None)
            candidates = [login_owner] if login_owner is not None else []
        # The mpid IDSync gave this client is its own (a bearer secret): a client-side batch keeps it when the
        # profile has logged in since, as under the server's rules; only reaching a profile through identities
        # anyone may name is refused.
        hint_kept = hinted is not None and policy.strategy in ("unify", "best_match")
        target = next((c for c in candidates
                       if not self._conflicts(c, claims)
                       and ((hint_kept and c == hinted) or self._eligible(c, identities, owners, client_side))), None)
        if target is not None and target == hinted:
            # The client already holds an mpid (from IDSync, where identity decisions for SDK traffic are
            # made): honour it; identities other profiles hold stay there and trigger no merge.
            candidates = [target]
        created = False
        if target is None:
            if not create:
                return None
            # A given mpid Kaon does not know yet is honoured for the new profile (ids kept on migration).
            keep = mpid_hint if mpid_hint and hinted is None and store.row(mpid_hint) is None else None
            target = store.create(now_ms, keep)
            created = True
        result = Resolution(mpid=target, created=created,
                            matched=[i for i in identities if owners.get(i) is not None])
        # Fix: merges only when links are made; a read-only resolution (IDSync search) used to merge the
        # profiles its identities pointed to.
        if policy.merges and self.merge is not None and link:
            for other in candidates:
                if other == target:
                    continue
                if self._profiles_conflict(target, other) or self._conflicts(other, claims):
                    continue
                shared = next((i for i in identities if owners.get(i) == other), None)
                refusal = self.refuse_client_merge(other, identities, owners) if client_side else None
                if refusal is not None:
                    result.refused_merges.append((other, refusal))
                    continue
                reason = f"unify: batch linked {shared[0]} held by {other}" if shared else "unify: mpid given"
                self.merge(target, other, reason)
                result.merged.append(other)
                for identity, owner in owners.items():
                    if owner == other:
                        owners[identity] = target
        if not link:
            return result
        for identity in identities:
            owner = owners.get(identity)
            if owner is not None:
                if owner != target:
                    result.skipped.append((*identity, "held_elsewhere"))
                continue
            # An identity erased by a data subject request is not linked again while it is suppressed.
            refusal = "suppressed" if is_suppressed(store.conn, store.ws, *identity, now_ms) else None
            refusal = refusal or self.refuse_link(target, identity)
            if refusal is not None:
                result.skipped.append((*identity, refusal))
                continue
            if store.link(target, identity, now_ms) != target:
                return None  # someone else took it between our read and write: resolve again
            result.linked.append(identity)
        return result

    def refuse_client_merge(self, other: int, identities: Sequence[Identity],
                            owners: dict[Identity, int]) -> str | None:
        """Why a client-side call may not merge `other` into its profile (`login_id`, `not_device_linked`), or None."""
        if self._is_known(other):
            return "login_id"
        if not any(owners.get(i) == other and i[0] in DEVICE_TYPES for i in identities):
            return "not_device_linked"
        return None

    def refuse_link(self, mpid: int, identity: Identity, *, replacing: Identity | None = None) -> str | None:
        """Why the profile may not take this identity (unique_conflict, limit), or None.

        `replacing`: a value of the profile that the same change removes (a `user_identity_change` with `old`),
        so it counts neither against the type's limit nor as a second value of a unique type.
        """
        identity_type, value = identity
        if self.policy.strategy == "best_match":
            return None
        held = self.store.values_of(mpid, identity_type)
        if replacing is not None and replacing[0] == identity_type:
            held.discard(replacing[1])
        if identity_type in self.policy.unique_types and held and value not in held:
            return "unique_conflict"
        limit = self.policy.limits.get(identity_type)
        if limit is not None and len(held) >= limit:
            return "limit"
        return None
