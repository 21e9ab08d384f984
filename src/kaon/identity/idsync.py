"""IDSync semantics (identify, search, login, logout, modify, alias) over Kaon's profiles.

Request and answer shapes follow mParticle's Identity API (wire-format reference §4); everything a call
changes happens in the caller's transaction. `client_side` marks a call made with a key-only (web) credential:
its key is public, so it may not take identities from other profiles nor learn whether an identity exists
(docs/security.md, "Identity: what a client-side call may change").
"""

from typing import Any, TypeVar

import msgspec

from kaon.activation.store import ConnectionStore, IdentityUpdates
from kaon.identity.extract import Identity, normalise
from kaon.identity.resolve import Resolution
from kaon.identity.service import Identity as IdentityService
from kaon.model.errors import PayloadError, located
from kaon.model.identities import IDSYNC_TO_CANONICAL, idsync_name
from kaon.model.values import Int64

ALIAS_MAX_WINDOW_MS = 90 * 86_400_000
T = TypeVar("T")


class ClientSdk(msgspec.Struct, kw_only=True):
    platform: str | None = None
    sdk_vendor: str | None = None
    sdk_version: str | None = None


class IdentityRequest(msgspec.Struct, kw_only=True):
    known_identities: dict[str, str | None]
    environment: str = "production"
    client_sdk: ClientSdk | None = None
    context: str | None = None
    request_id: str | None = None
    request_timestamp_ms: Int64 | None = None
    previous_mpid: Int64 | None = None


class IdentityChange(msgspec.Struct, kw_only=True):
    identity_type: str
    old_value: str | None = None
    new_value: str | None = None


class ModifyRequest(msgspec.Struct, kw_only=True):
    identity_changes: list[IdentityChange]
    environment: str = "production"
    client_sdk: ClientSdk | None = None
    context: str | None = None
    request_id: str | None = None
    request_timestamp_ms: Int64 | None = None


class AliasData(msgspec.Struct, kw_only=True):
    source_mpid: Int64
    destination_mpid: Int64
    start_unixtime_ms: Int64 | None = None
    end_unixtime_ms: Int64 | None = None
    scope: str | None = None
    device_application_stamp: str | None = None


class AliasRequest(msgspec.Struct, kw_only=True):
    data: AliasData | None = None
    # Some native SDK models put the fields at the top level: accept both.
    source_mpid: Int64 | None = None
    destination_mpid: Int64 | None = None
    start_unixtime_ms: Int64 | None = None
    end_unixtime_ms: Int64 | None = None
    request_id: str | None = None
    request_type: str | None = None
    environment: str | None = None
    api_key: str | None = None

    def fields(self) -> AliasData:
        if self.data is not None:
            return self.data
        if self.source_mpid is None or self.destination_mpid is None:
            raise PayloadError("INVALID_SHAPE", "source_mpid and destination_mpid are required - at `$.data`")
        return AliasData(source_mpid=self.source_mpid, destination_mpid=self.destination_mpid,
                         start_unixtime_ms=self.start_unixtime_ms, end_unixtime_ms=self.end_unixtime_ms)


def decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind, strict=False)
    except msgspec.MsgspecError as error:
        raise located(error, "$") from None
    except RecursionError:
        raise PayloadError("INVALID_JSON", "JSON is nested too deeply - at `$`") from None


def canonical_type(name: str, where: str) -> str:
    canonical = IDSYNC_TO_CANONICAL.get(name)
    if canonical is None:
        raise PayloadError("UNKNOWN_IDENTITY_TYPE", f"Unknown identity type `{name}` - at `{where}`")
    return canonical


def known_identities(request: IdentityRequest, service: IdentityService) -> list[Identity]:
    """The request's identities in canonical names, normalised, blocked values left out, strongest first."""
    out = []
    for name, value in request.known_identities.items():
        identity_type = canonical_type(name, f"$.known_identities.{name}")
        if value is None:
            continue
        normal = normalise(identity_type, value)
        if not service.policy.is_blocked(normal):
            out.append((identity_type, normal))
    if not out and not request.known_identities:
        raise PayloadError("INVALID_SHAPE", "known_identities needs at least one identity - at `$.known_identities`")
    out.sort(key=lambda item: (service.policy.rank(item[0]), item[0]))
    return out


def answer(service: IdentityService, mpid: int, request: list[Identity], matched: list[Identity],
           client_side: bool = False) -> dict[str, Any]:
    if client_side:
        # The same shape whether or not any identity was known: no matches, logged in iff a login id was sent.
        return {"context": None, "mpid": str(mpid), "is_ephemeral": False,
                "is_logged_in": any(i[0] in service.policy.login_types for i in request), "matched_identities": {}}
    held = {(t, v) for t, v, _ in service.store.identities(mpid)}
    logged_in = any(i in held for i in request if i[0] in service.policy.login_types)
    return {
        "context": None,
        "mpid": str(mpid),
        "is_ephemeral": False,
        "is_logged_in": logged_in,
        "matched_identities": {idsync_name(t): v for t, v in matched},
    }


def identify(service: IdentityService, request: IdentityRequest, client_side: bool = False) -> dict[str, Any]:
    """identify and login: the profile for these identities, created when none fits."""
    return identify_resolved(service, request, client_side)[0]


def identify_resolved(service: IdentityService, request: IdentityRequest,
                      client_side: bool = False) -> tuple[dict[str, Any], Resolution]:
    """identify, with the resolution behind the answer (its refused merges are the door's to record)."""
    ids = known_identities(request, service)
    resolution = service.resolver.resolve(ids, service.now_ms, client_side=client_side)
    assert resolution is not None
    return answer(service, resolution.mpid, ids, resolution.matched, client_side), resolution


def search(service: IdentityService, request: IdentityRequest) -> dict[str, Any] | None:
    """Like identify, but never creates or links: None when nobody matches."""
    ids = known_identities(request, service)
    resolution = service.resolver.resolve(ids, service.now_ms, create=False, link=False)
    return None if resolution is None else answer(service, resolution.mpid, ids, resolution.matched)


def logout(service: IdentityService, request: IdentityRequest, client_side: bool = False) -> dict[str, Any]:
    """An anonymous profile: the device's existing anonymous one (isolation), else a new one."""
    ids = [i for i in known_identities(request, service) if i[0] not in service.policy.login_types]
    store = service.store
    target = None
    if service.policy.strategy != "profile_link":
        owners = store.owners(ids)
        for identity in ids:
            owner = owners.get(identity)
            if owner is not None and not any(t in service.policy.login_types for t, _, _ in store.identities(owner)):
                target = owner
                break
    if target is None:
        target = store.create(service.now_ms)
    for identity in ids:
        store.link(target, identity, service.now_ms)
    return answer(service, target, ids, [i for i in ids if store.owners([i]).get(i) == target], client_side)


def modify(service: IdentityService, mpid: int, request: ModifyRequest,
           client_side: bool = False) -> dict[str, Any] | None:
    """Add, change or remove identities of an existing profile; None when the profile is unknown.

    A change with `old_value` and `new_value` replaces the old value by the new one (mParticle's modify); a
    null `old_value` adds, a null `new_value` removes. A unique type keeps one value (others are replaced), and
    a value another profile holds moves here (mParticle: it is removed from the other profile). Refusals undo
    the whole request (the caller's transaction): a blocked value, or more values of a type than `limits` allow.
    A client-side call never takes a value another profile holds (`IDENTITY_CLAIMED`): with a public key that
    would let anyone move a victim's customer id onto their own profile.
    """
    store = service.store
    live = store.live(mpid)
    if live is None:
        return None
    results = []
    moved: set[int] = set()
    for index, change in enumerate(request.identity_changes):
        where = f"$.identity_changes[{index}]"
        identity_type = canonical_type(change.identity_type, f"{where}.identity_type")
        old = None if change.old_value is None else (identity_type, normalise(identity_type, change.old_value))
        results.append({"identity_type": change.identity_type, "modified_mpid": str(live)})
        if change.new_value is None:
            if old is not None:
                store.unlink(live, old)
            continue
        new = (identity_type, normalise(identity_type, change.new_value))
        if service.policy.is_blocked(new[1]):
            raise PayloadError("BLOCKED_IDENTITY", f"`{change.new_value}` is a blocked value - at `{where}.new_value`")
        if old == new and store.owners([new]).get(new) == live:
            continue  # unchanged (the web SDK sends its unchanged ids too): keep the value's first-seen time
        if old is not None:
            store.unlink(live, old)
        if identity_type in service.policy.unique_types:
            for held in store.values_of(live, identity_type) - {new[1]}:
                store.unlink(live, (identity_type, held))
        owner = store.owners([new]).get(new)
        if owner == live:
            continue
        if service.resolver.refuse_link(live, new) == "limit":
            limit = service.policy.limits[identity_type]
            raise PayloadError("IDENTITY_LIMIT", f"profile {live} already holds {limit} `{change.identity_type}`"
                                                 f" values, the workspace's limit - at `{where}.new_value`")
        if owner is not None and client_side:
            raise PayloadError("IDENTITY_CLAIMED", f"`{change.identity_type}` value is held by another profile; "
                                                   f"only a server credential may move it - at `{where}.new_value`")
        if owner is not None:
            store.unlink(owner, new)  # the value moves to this profile
            moved.add(owner)
        store.link(live, new, service.now_ms)
    if request.identity_changes and ConnectionStore(store.conn, store.ws).syncs_any():
        # Audience connections that sent this profile (or the one a value moved from) update what they sent.
        IdentityUpdates(store.conn).note(store.ws, sorted({live, *moved}), service.now_ms)
    return {"change_results": results}
