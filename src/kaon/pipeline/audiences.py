"""Step: bring each batch's profile's calculated attributes and audience memberships up to date with its events.

In the slice's transaction, after the events are stored (their ids decide which definitions take them, so an
activation's backfill and live work count each event once) and before fan-out (which forwards the calculated
values as user attributes). A workspace with no live definitions costs one query per slice.
"""

import logging
from typing import Any

from kaon.activation.store import ConnectionStore, IdentityUpdates
from kaon.audiences.definition import DEVICE_FIELDS
from kaon.audiences.engine import Compiled, Engine, Seen, compile_workspace
from kaon.audiences.facts import fact_of_event
from kaon.audiences.store import Change
from kaon.model.batch import Batch
from kaon.model.events import UserAttributeChange
from kaon.pipeline.work import Slice, WorkBatch

_log = logging.getLogger("kaon.audiences")


def device_of(batch: Batch) -> dict[str, Any]:
    """The device and app facts audience criteria read (kaon.audiences.definition.DEVICE_FIELDS; the latest
    batch's win): from `device_info`, and `application_version` / `application_name` from `application_info`."""
    out: dict[str, Any] = {}
    for source in (batch.device_info, batch.application_info):
        if source is not None:
            out.update({k: v for k in DEVICE_FIELDS if (v := getattr(source, k, None)) is not None})
    return out


def changed_facts(items: list[WorkBatch], device: dict[str, Any], held: dict[str, Any]) -> frozenset[str]:
    """The profile facts these batches may have changed, as kaon.audiences.definition's `reads` names them: seen
    times always, identities always (links are not tracked here), the user attributes they set or delete, the
    device fields whose value differs from the one held, consent when sent."""
    changed = {"first_seen", "last_seen", "identity"}
    changed.update(f"device:{k}" for k, v in device.items() if held.get(k) != v)
    for item in items:
        b = item.batch
        names = [*(b.user_attributes or {}), *(b.deleted_user_attributes or ())]
        names.extend(e.data.user_attribute_name for i in item.kept()
                     if isinstance(e := b.events[i], UserAttributeChange) and e.data.user_attribute_name)
        changed.update(f"user_attribute:{str(name).lower()}" for name in names)
        if b.consent_state is not None:
            changed.add("consent")
    return frozenset(changed)


class UpdateAudiences:
    name = "audiences"

    @staticmethod
    def _note_identity_changes(work: Slice) -> None:
        """Profiles whose identities the slice changed, for the audience connections that sync them (a workspace
        without sync connections writes nothing)."""
        changed: dict[str, set[int]] = {}
        for item in work.batches:
            if item.identities_changed and item.batch.mpid is not None:
                changed.setdefault(item.workspace_id, set()).add(item.batch.mpid)
        for workspace_id, mpids in changed.items():
            if ConnectionStore(work.tx, workspace_id).syncs_any():
                IdentityUpdates(work.tx).note(workspace_id, sorted(mpids), work.now_ms)

    def run(self, work: Slice) -> None:
        compiled: dict[str, Compiled] = {}
        groups: dict[tuple[str, int], list[WorkBatch]] = {}
        for item in work.batches:
            if item.batch.mpid is None:
                continue
            if item.workspace_id not in compiled:
                compiled[item.workspace_id] = compile_workspace(work.tx, item.workspace_id, lock=True)
            if not compiled[item.workspace_id].empty:
                groups.setdefault((item.workspace_id, item.batch.mpid), []).append(item)
        for workspace_id, found in compiled.items():
            mine = sorted(m for ws, m in groups if ws == workspace_id)
            if not mine:
                continue
            engine = Engine(work.tx, workspace_id, found)
            states = engine.states.load(mine, lock=True)
            engine.prefetch(mine)
            refreshed: list[tuple[int, dict[str, Any], list[Change]]] = []
            for mpid in mine:
                items = groups[(workspace_id, mpid)]
                seen: list[Seen] = []
                device: dict[str, Any] = {}
                for item in items:
                    received = item.entry.entry.received_ms
                    for index, event_id in sorted(item.event_ids.items()):
                        seen.append((event_id, fact_of_event(item.batch.events[index], received)))
                    device.update(device_of(item.batch))
                state = states.get(mpid, {})
                changed = changed_facts(items, device, state.get("d", {}))
                # A failure here must not cost the batch its processing: the profile's state is left as it was
                # (refresh writes nothing), the events go on, and the failure is recorded where people look.
                try:
                    values, changes = engine.refresh(mpid, state, seen, now_ms=work.now_ms, at_ms=work.now_ms,
                                                     cause="event", device=device, changed=changed)
                except Exception as error:
                    _log.exception("audiences of profile %s failed", mpid)
                    work.count(items[-1].entry, "audience_failures")
                    work.warn(items[-1].entry, "AUDIENCE_EVALUATION_FAILED",
                              f"audiences and calculated attributes of profile {mpid} were not updated: "
                              f"{type(error).__name__}: {error}")
                    continue
                refreshed.append((mpid, state, changes))
                for item in items:
                    item.calculated_attributes = values
                if changes:
                    work.count(items[-1].entry, "audience_changes", len(changes))
            engine.save_many(refreshed, work.now_ms)
        # After the changes are written: the sync worker locks audience_changes, then audience_identity_updates.
        self._note_identity_changes(work)
