"""Step: validate batches against their data plan; flag invalid data, block unplanned data into the quarantine.

Runs after dedup and before identity, so blocked data never reaches profiles, audiences or outputs.
Invalid-but-planned data is counted and passes (mParticle's rule). Everything commits with the slice.
"""

from collections import Counter
from typing import Any

import msgspec

from kaon.governance import quarantine
from kaon.governance.plans_store import ActiveVersion, PlanStore, ReportKey, add_report
from kaon.governance.plans_validate import CompiledPlan, Finding, check_batch, compile_plan
from kaon.model.identities import DEVICE_IDENTITY_TYPES, idsync_name
from kaon.pipeline.work import Slice, WorkBatch
from kaon.store.dedup import DedupStore
from kaon.store.metrics import hour_of

_encoder = msgspec.json.Encoder()
_document = msgspec.json.Decoder(dict[str, Any])
_MAX_CACHED = 256
# IDSync identity name → where it lives in the batch (device identities live in device_info).
_DEVICE_FIELDS = {idsync_name(name): name for name in DEVICE_IDENTITY_TYPES}


def violation_type(finding: Finding, kind: str) -> str:
    """The report's name for a violation: unplanned_event, unplanned_event_attribute, invalid_value, ..."""
    if kind != "unplanned":
        return kind
    if finding.index is None:
        return "unplanned_user_attribute" if finding.key == "user_attributes" else "unplanned_user_identity"
    return "unplanned_event" if not finding.planned else "unplanned_event_attribute"


class ApplyPlans:
    name = "plans"

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str, int, int], CompiledPlan] = {}

    def _plan(self, workspace_id: str, active: ActiveVersion) -> CompiledPlan:
        key = (workspace_id, active.plan_id, active.version, active.updated_ms)
        plan = self._compiled.get(key)
        if plan is None:
            if len(self._compiled) >= _MAX_CACHED:
                self._compiled.clear()
            plan = self._compiled[key] = compile_plan(_document.decode(active.document))
        return plan

    def run(self, work: Slice) -> None:
        versions: dict[tuple[str, str, int | None, str], ActiveVersion | None] = {}
        report: Counter[ReportKey] = Counter()
        defaults: dict[str, dict[str, tuple[str, int | None]]] = {}
        for item in list(work.batches):
            batch = item.batch
            replayed = quarantine.replay_id(batch, item.entry.partition)
            if replayed is not None:
                # Received (and counted) once already, when it was first quarantined.
                work.count(item.entry, "batches_received", -1)
                work.count(item.entry, "events_received", -len(batch.events))
                if not quarantine.take(work.tx, item.workspace_id, replayed):
                    work.batches.remove(item)  # this row's replay was already applied
                    continue
                work.count(item.entry, "quarantine_replayed")
            plan_ref = batch.context.data_plan if batch.context is not None else None
            if plan_ref is not None:
                plan_id, plan_version = plan_ref.plan_id, plan_ref.plan_version
            else:  # the input's default plan, if it has one
                if item.workspace_id not in defaults:
                    defaults[item.workspace_id] = PlanStore(work.tx, item.workspace_id).default_plans()
                default = defaults[item.workspace_id].get(item.input_id)
                if default is None:
                    continue
                plan_id, plan_version = default
            key = (item.workspace_id, plan_id, plan_version, batch.environment)
            if key not in versions:
                versions[key] = PlanStore(work.tx, item.workspace_id).active(plan_id, plan_version, batch.environment)
            active = versions[key]
            if active is None:
                work.count(item.entry, "plan_not_found", 1, plan_id)
                continue
            findings = check_batch(self._plan(item.workspace_id, active), batch, item.keep)
            self._apply(work, item, active, findings, report if replayed is None else None)
        add_report(work.tx, report)

    def _apply(self, work: Slice, item: WorkBatch, active: ActiveVersion, findings: list[Finding],
               report: Counter[ReportKey] | None) -> None:
        blocking = active.blocking
        hour = hour_of(item.entry.entry.received_ms)
        reasons: list[dict[str, Any]] = []
        blocked_events: list[int] = []
        strip: list[tuple[Finding, list[str]]] = []
        invalid = 0
        for finding in findings:
            if report is not None:
                for violation in finding.violations:
                    report[(item.workspace_id, active.plan_id, active.version, finding.key,
                            violation_type(finding, violation.kind), hour)] += 1
            invalid += finding.invalid
            if finding.index is not None and not finding.planned:
                if blocking.unplanned_events:
                    blocked_events.append(finding.index)
                    reasons.append({"reason": "unplanned_event", "data_point": finding.key,
                                    "source_message_id": item.batch.events[finding.index].data.source_message_id})
                continue
            enabled = (blocking.unplanned_event_attributes if finding.index is not None
                       else blocking.unplanned_user_attributes if finding.key == "user_attributes"
                       else blocking.unplanned_user_identities)
            names = [n for n in finding.unplanned_names() if n != "device_application_stamp"] if enabled else []
            if names:
                strip.append((finding, names))
                reasons.append({"reason": violation_type(finding, "unplanned"), "data_point": finding.key,
                                "keys": names})
        if invalid:
            work.count(item.entry, "plan_invalid", invalid, active.plan_id)
        if not reasons:
            return
        original = _encoder.encode(item.batch)  # before anything is removed
        self._block(work, item, blocked_events, strip)
        quarantine.add(work.tx, workspace_id=item.workspace_id, input_id=item.input_id, plan_id=active.plan_id,
                       plan_version=active.version, received_ms=item.entry.entry.received_ms, now=work.now_ms,
                       reasons=reasons, blocked_events=blocked_events, batch=original)
        work.count(item.entry, "batches_quarantined", 1, active.plan_id)

    def _block(self, work: Slice, item: WorkBatch, events: list[int], strip: list[tuple[Finding, list[str]]]) -> None:
        batch = item.batch
        unseen = []
        for index in events:
            item.keep[index] = False
            message_id = batch.events[index].data.source_message_id
            if message_id:
                unseen.append(message_id)
        if events:
            work.count(item.entry, "events_blocked", len(events))
            # Never stored: forget the ids so a replay of these events is not taken for a duplicate.
            DedupStore(work.tx, 0).forget(item.workspace_id, unseen)
        for finding, names in strip:
            work.count(item.entry, "attributes_blocked", len(names), violation_type(finding, "unplanned"))
            if finding.index is not None:
                attributes = batch.events[finding.index].data.custom_attributes or {}
                for name in names:
                    attributes.pop(name, None)
            elif finding.key == "user_attributes":
                for name in names:
                    batch.user_attributes.pop(name, None)
            else:
                self._drop_identities(item, names)

    @staticmethod
    def _drop_identities(item: WorkBatch, names: list[str]) -> None:
        batch = item.batch
        identities = batch.user_identities or {}
        for canonical in [k for k in identities if idsync_name(k) in names]:
            del identities[canonical]
        if batch.device_info is not None:
            for name in names:
                field = _DEVICE_FIELDS.get(name)
                if field is not None:
                    setattr(batch.device_info, field, None)
