"""Step: update each resolved profile from its batch: seen times, sessions, attributes, opt-out, consent."""

from typing import Any

import msgspec

from kaon.governance.consent import ConsentSettings, consent_changes, load_settings
from kaon.governance.consent_store import ConsentHistory, Source
from kaon.governance.dsr_suppress import is_suppressed
from kaon.identity.extract import Identity as IdentityPair
from kaon.identity.extract import normalise
from kaon.identity.merge import merged_consent
from kaon.identity.service import Identity
from kaon.identity.store import ProfileStore
from kaon.model.events import (
    IdentityValue,
    OptOut,
    SessionStart,
    UserAttributeChange,
    UserAttributeChangeData,
    UserIdentityChange,
    UserIdentityChangeData,
)
from kaon.model.identities import canonical_identity
from kaon.pipeline.work import Slice, WorkBatch


def _consent(item: WorkBatch) -> dict[str, Any]:
    """The batch's consent records by regulation and (trimmed, lower-cased) purpose; a record without a
    timestamp takes the batch's receive time."""
    state = item.batch.consent_state
    if state is None:
        return {}
    out: dict[str, Any] = {}
    for regulation, purposes in (("gdpr", state.gdpr), ("ccpa", state.ccpa)):
        if purposes:
            records = out.setdefault(regulation, {})
            for name, record in purposes.items():
                built = msgspec.to_builtins(record)
                if built.get("timestamp_unixtime_ms") is None:
                    built["timestamp_unixtime_ms"] = item.entry.entry.received_ms
                records[name.strip().lower()] = built
    return out


def _identity(value: IdentityValue | None) -> IdentityPair | None:
    """An identity change's side as a canonical, normalised identity; None when it names no value."""
    if value is None or not value.identity_type or not value.identity:
        return None
    kind = canonical_identity(value.identity_type)
    return kind, normalise(kind, value.identity)


def _batch_identities(item: WorkBatch) -> set[IdentityPair]:
    return {(kind, normalise(kind, value)) for kind, value in
            ((canonical_identity(name), value) for name, value in (item.batch.user_identities or {}).items())
            if value}


class UpdateProfiles:
    name = "profiles"

    def _identity_change(self, work: Slice, item: WorkBatch, mpid: int, data: UserIdentityChangeData) -> None:
        """A `user_identity_change` event adds `new`, replaces `old` by `new`, or (no `new`) removes `old`.

        A replacement is one step: the new value is linked and the old one unlinked, or (blocked value, unique or
        limit refusal, value held by another profile) nothing changes and the refusal is counted in
        `identity_links_skipped` by reason. `old` is replaced only when this profile holds it.
        """
        identity = Identity(work.tx, item.workspace_id, actor="pipeline", now_ms=work.now_ms)
        store = identity.store
        old = _identity(data.old)
        new = _identity(data.new)
        if new is None:
            if old is not None and store.unlink(mpid, old):
                item.identities_changed = True
            return
        if identity.policy.is_blocked(new[1]):
            work.count(item.entry, "identity_links_skipped", 1, "blocked")
            return
        if old is not None and (old[0] != new[0] or store.owners([old]).get(old) != mpid):
            old = None  # not this profile's (or another type): the event only adds `new`
        owner = store.owners([new]).get(new)
        if owner is None:
            # As in resolution: an identity erased by a data subject request is not linked again.
            suppressed = is_suppressed(work.tx, item.workspace_id, *new, work.now_ms)
            refusal = "suppressed" if suppressed else identity.resolver.refuse_link(mpid, new, replacing=old)
            if refusal is not None:
                # A plain add of one of the batch's own identities was refused (and counted) by resolution.
                if old is not None or new not in _batch_identities(item):
                    work.count(item.entry, "identity_links_skipped", 1, refusal)
                    if suppressed:
                        work.count(item.entry, "identity_suppressed")
                return
            owner = store.link(mpid, new, work.now_ms)
            item.identities_changed = item.identities_changed or owner == mpid
        if owner != mpid:
            work.count(item.entry, "identity_links_skipped", 1, "held_elsewhere")
            return
        if old is not None and old != new and store.unlink(mpid, old):
            item.identities_changed = True

    def _record_consent(self, work: Slice, item: WorkBatch, mpid: int, consent: dict[str, Any],
                        settings: ConsentSettings | None) -> None:
        """Current state (newest per purpose wins), history (every distinct record) and unknown purposes."""
        store = ProfileStore(work.tx, item.workspace_id)
        row = store.row(mpid)
        assert row is not None
        merged = merged_consent(row["consent"], consent)
        store.set_consent(mpid, merged)
        item.system_notifications.extend(consent_changes(row["consent"], merged))
        entry = item.entry
        item.consent_history_ids.extend(ConsentHistory(work.tx, item.workspace_id).append_state(mpid, consent, Source(
            received_ms=entry.entry.received_ms, input_id=item.input_id,
            source_request_id=item.batch.source_request_id, log_partition=entry.partition, log_seq=entry.seq)))
        if settings is not None:
            known = settings.names()
            for purpose in consent.get("gdpr", {}):
                if purpose not in known:
                    work.count(entry, "consent_unknown_purpose", 1, purpose)

    def run(self, work: Slice) -> None:
        consent_settings: dict[str, ConsentSettings | None] = {}
        for item in work.batches:
            mpid = item.batch.mpid
            if mpid is None:
                continue
            store = ProfileStore(work.tx, item.workspace_id)
            received = item.entry.entry.received_ms
            kept = [item.batch.events[i] for i in item.kept()]
            times = [e.data.timestamp_unixtime_ms or received for e in kept] or [received]
            sessions = sum(1 for e in kept if isinstance(e, SessionStart))
            store.seen(mpid, min(times), max(times), sessions)
            at = max(times)
            for name, value in item.batch.user_attributes.items():
                store.set_attribute(mpid, name, value, at)
            for name in item.batch.deleted_user_attributes:
                store.delete_attribute(mpid, name, at)
            for event in kept:
                when = event.data.timestamp_unixtime_ms or received
                if isinstance(event, UserAttributeChange) and isinstance(event.data, UserAttributeChangeData):
                    if event.data.deleted:
                        store.delete_attribute(mpid, event.data.user_attribute_name, when)
                    else:
                        store.set_attribute(mpid, event.data.user_attribute_name, event.data.new, when)
                elif isinstance(event, OptOut):
                    store.set_opted_out(mpid, bool(getattr(event.data, "is_opted_out", False)))
                elif isinstance(event, UserIdentityChange) and isinstance(event.data, UserIdentityChangeData):
                    self._identity_change(work, item, mpid, event.data)
            consent = _consent(item)
            if consent:
                if item.workspace_id not in consent_settings:
                    consent_settings[item.workspace_id] = load_settings(work.tx, item.workspace_id)
                self._record_consent(work, item, mpid, consent, consent_settings[item.workspace_id])
