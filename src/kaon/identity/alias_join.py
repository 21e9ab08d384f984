"""Segment's `alias` (previousId → userId): the previous identity's profile joins the user's profile.

`previousId` is a previous `userId` or a previous `anonymousId` (Segment's spec), so Kaon looks it up as both
identities Segment calls map them to: `customer_id` and the device stamp `device_application_stamp`. Each
profile holding it, other than the user's, joins the user's profile by the workspace's strategy:
- `unify`: an audited merge (kaon.identity.merge) into the user's profile, which survives: events, attributes
  (newest wins), consent and identities move, and `POST /api/v1/profiles/{mpid}/unmerge` undoes it;
- the strategies that never merge: mParticle's alias request (kaon.identity.alias) from the previous profile
  to the user's: its events of the 90 days before now are copied (after `alias_delay_hours`, if set); the
  profiles stay apart, as mParticle's do.
A refusal changes nothing and names both sides; its reason is one of `blocked_value`, `unknown_previous`,
`same_profile`, `unique_conflict` (unify), or mParticle's alias rules `source_was_destination`,
`destination_was_source`, `overlap` (copy). A client-side alias (from an input that accepts key-only calls,
whose key is public) never joins a previous profile that holds a login id: `known_previous`.
"""

from dataclasses import dataclass
from typing import Final

from kaon.identity.alias import request_alias
from kaon.identity.extract import DEVICE_STAMP, Identity, normalise
from kaon.identity.idsync import AliasData
from kaon.identity.merge import merge
from kaon.identity.service import Identity as IdentityService
from kaon.model.errors import PayloadError

# The identities a previousId may be, strongest first.
PREVIOUS_TYPES: Final = ("customer_id", DEVICE_STAMP)


@dataclass(frozen=True)
class AliasOutcome:
    """What one alias did with one previous profile: `merged`, `copied` or `refused` (with `reason`)."""

    outcome: str
    message: str
    reason: str = ""
    previous_mpid: int | None = None


def previous_identities(previous_id: str, user_id: str | None) -> list[Identity]:
    """The identities `previousId` may name; none when it is the userId itself (nothing to join)."""
    if user_id is not None and previous_id.strip() == user_id.strip():
        return []
    return [(kind, normalise(kind, previous_id)) for kind in PREVIOUS_TYPES]


def _refused(reason: str, message: str, previous_mpid: int | None = None) -> AliasOutcome:
    return AliasOutcome("refused", message, reason, previous_mpid)


def join(service: IdentityService, target: int, previous_id: str, user_id: str | None, *,
         delay_ms: int = 0, client_side: bool = False) -> list[AliasOutcome]:
    """Join the profiles holding `previous_id` to `target` (the user's live profile); one outcome each."""
    policy, store = service.policy, service.store
    user = f"userId {user_id!r}" if user_id else "the call's user"
    previous = previous_id.strip()
    for name, value in (("previousId", previous), ("userId", (user_id or "").strip() or None)):
        if value is not None and policy.is_blocked(value):
            return [_refused("blocked_value", f"{name} {value!r} is a blocked value: nothing was joined to "
                                              f"profile {target} ({user})")]
    wanted = previous_identities(previous, user_id)
    owners = store.owners(wanted)
    holders: list[int] = []
    for identity in wanted:
        owner = owners.get(identity)
        live = store.live(owner) if owner is not None else None
        if live is not None and live not in holders:
            holders.append(live)
    if not holders and wanted:
        return [_refused("unknown_previous", f"previousId {previous!r} is held by no profile (looked up as "
                                             f"{' and '.join(PREVIOUS_TYPES)}): nothing was joined to profile "
                                             f"{target} ({user})")]
    others = [mpid for mpid in holders if mpid != target]
    if not others:
        return [_refused("same_profile", f"previousId {previous!r} is already on profile {target} ({user})",
                         target)]
    return [_join_one(service, target, other, previous, user, delay_ms, client_side) for other in others]


def _join_one(service: IdentityService, target: int, other: int, previous: str, user: str,
              delay_ms: int, client_side: bool) -> AliasOutcome:
    if client_side and any(t in service.policy.login_types for t, _, _ in service.store.identities(other)):
        return _refused("known_previous", (
            f"profile {other} (previousId {previous!r}) holds a login id, so an alias from a key-only input may not "
            f"join it to profile {target} ({user}); send it with the input's secret or from a server input"), other)
    if service.policy.merges:
        conflict = service.resolver.unique_conflict(target, other)
        if conflict is not None:
            kind, mine, theirs = conflict
            return _refused("unique_conflict", (
                f"profile {other} (previousId {previous!r}) holds {kind} {sorted(theirs)} and profile {target} "
                f"({user}) holds {sorted(mine)}: {kind} is unique, so they were not merged"), other)
        merge(service.conn, service.workspace_id, target, other,
              reason=f"alias: previousId {previous!r} joined to {user}", actor=service.actor, now_ms=service.now_ms)
        return AliasOutcome("merged", f"profile {other} (previousId {previous!r}) merged into profile {target}",
                            previous_mpid=other)
    try:
        request_alias(service.conn, service.workspace_id, AliasData(source_mpid=other, destination_mpid=target),
                      now_ms=service.now_ms, delay_ms=delay_ms)
    except PayloadError as error:
        reason = error.code.removeprefix("ALIAS_").lower()
        return _refused(reason, f"alias of profile {other} (previousId {previous!r}) to profile {target} ({user}) "
                                f"refused: {error.message}", other)
    return AliasOutcome("copied", f"events of profile {other} (previousId {previous!r}) copied to profile {target}",
                        previous_mpid=other)
