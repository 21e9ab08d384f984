"""Validating a canonical batch against a plan version (pure): mParticle's validation results.

Plannable: custom events (event_name + custom_event_type), screen views (screen_name), commerce events
(product_action.action, promotion_action.action, product impressions), the batch's user attributes and its
identities (IDSync names: `customerid`, `email`, `ios_idfa`, ...). Other event types get no result.
"""

from dataclasses import dataclass, field
from typing import Any

import msgspec

from kaon.governance.plans_document import match_key
from kaon.governance.plans_schema import Node, Violation, compile_schema, pointer_part, validate, validate_object
from kaon.model.batch import Batch
from kaon.model.events import CommerceEventData, CustomEventData, EventBase, ScreenViewData
from kaon.model.identities import DEVICE_IDENTITY_TYPES, idsync_name

ATTRIBUTES_POINTER = "#/data/custom_attributes/"


@dataclass(frozen=True)
class DataPoint:
    key: str
    match: dict[str, Any]
    node: Node | None  # None: no validator, anything goes


@dataclass
class CompiledPlan:
    """A version document ready to validate with: data points indexed by their match key."""

    points: dict[str, DataPoint]

    @property
    def user_attributes(self) -> DataPoint | None:
        return self.points.get("user_attributes")

    @property
    def user_identities(self) -> DataPoint | None:
        return self.points.get("user_identities")


def compile_plan(document: dict[str, Any]) -> CompiledPlan:
    """Compile a version document that passed `check_version_document`."""
    points: dict[str, DataPoint] = {}
    for point in document.get("data_points", []):
        match = point["match"]
        if match["type"] == "unknown":
            continue
        criteria = match.get("criteria", {})
        validator = point.get("validator")
        node = None if validator is None else compile_schema(validator.get("definition", {}))
        key = match_key(match["type"], criteria)
        points[key] = DataPoint(key=key, match={"type": match["type"], "criteria": criteria}, node=node)
    return CompiledPlan(points)


def event_match(event: EventBase) -> dict[str, Any] | None:
    """The match an event would need in a plan (None: the event type cannot be planned)."""
    data = event.data
    if isinstance(data, CustomEventData):
        return {"type": "custom_event",
                "criteria": {"event_name": data.event_name, "custom_event_type": data.custom_event_type}}
    if isinstance(data, ScreenViewData):
        return {"type": "screen_view", "criteria": {"screen_name": data.screen_name}}
    if isinstance(data, CommerceEventData):
        if data.product_action is not None:
            return {"type": "product_action", "criteria": {"action": data.product_action.action}}
        if data.promotion_action is not None:
            return {"type": "promotion_action", "criteria": {"action": data.promotion_action.action}}
        if data.product_impressions:
            return {"type": "product_impression", "criteria": {}}
    return None


@dataclass
class Finding:
    """What the plan says about one thing in the batch: an event (by index), user attributes or identities."""

    match: dict[str, Any]
    key: str
    planned: bool
    violations: list[Violation] = field(default_factory=list)
    index: int | None = None  # the event's position in `batch.events`

    @property
    def invalid(self) -> bool:
        return any(v.kind != "unplanned" for v in self.violations)

    def unplanned_names(self) -> list[str]:
        """Names of unplanned attributes (event custom attributes, or user attribute/identity keys)."""
        if self.index is None:
            return [v.key for v in self.violations if v.kind == "unplanned" and v.pointer.count("/") == 1]
        return [v.key for v in self.violations if v.kind == "unplanned" and v.pointer.startswith(ATTRIBUTES_POINTER)
                and "/" not in v.pointer[len(ATTRIBUTES_POINTER):]]


def identities_of(batch: Batch) -> dict[str, str]:
    """The batch's identities under IDSync names (user identities, device identities, the device stamp)."""
    out = {idsync_name(k): v for k, v in (batch.user_identities or {}).items() if v is not None}
    if batch.device_info is not None:
        for name in DEVICE_IDENTITY_TYPES:
            value = getattr(batch.device_info, name, None)
            if value:
                out[idsync_name(name)] = value
    if batch.mp_deviceid:
        out["device_application_stamp"] = batch.mp_deviceid
    return out


def _map_finding(point: DataPoint | None, kind: str, values: dict[str, Any]) -> Finding | None:
    if not values:
        return None
    match = {"type": kind, "criteria": {}}
    if point is None:  # nothing of this kind is planned: every key is unplanned
        return Finding(match, kind, False, [Violation("unplanned", k, f"#/{pointer_part(k)}", "additionalProperties",
                                                      None, v) for k, v in values.items()])
    finding = Finding(match, kind, True)
    if point.node is not None:
        validate_object(point.node, values, "#", finding.violations)
        if point.node.types is not None and "object" not in point.node.types:
            finding.violations.append(Violation("invalid_value", kind, "#", "type", sorted(point.node.types), values))
    return finding


def check_batch(plan: CompiledPlan, batch: Batch, keep: list[bool] | None = None) -> list[Finding]:
    """Everything the plan finds in the batch; events with `keep[i]` false are skipped."""
    findings: list[Finding] = []
    for index, event in enumerate(batch.events):
        if keep is not None and not keep[index]:
            continue
        match = event_match(event)
        if match is None:
            continue
        key = match_key(match["type"], match["criteria"])
        point = plan.points.get(key)
        if point is None:
            name = key.split(":", 2)[-1]
            findings.append(Finding(match, key, False, [Violation("unplanned", name, "#", "", None, None)], index))
            continue
        finding = Finding(match, key, True, index=index)
        if point.node is not None:
            validate(point.node, msgspec.to_builtins(event), "#", key, finding.violations)
        findings.append(finding)
    attributes = _map_finding(plan.user_attributes, "user_attributes", batch.user_attributes)
    if attributes is not None:
        findings.append(attributes)
    identities = _map_finding(plan.user_identities, "user_identities", identities_of(batch))
    if identities is not None:
        findings.append(identities)
    return findings


def _error(violation: Violation) -> dict[str, Any]:
    out: dict[str, Any] = {"validation_error_type": violation.kind, "key": violation.key,
                           "error_pointer": violation.pointer}
    if violation.expected is not None:
        out["expected"] = violation.expected
    if violation.actual is not None:
        out["actual"] = violation.actual
    if violation.keyword:
        out["schema_keyword"] = violation.keyword
    return out


def results(findings: list[Finding], batch: Batch, event_ids: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """mParticle's validation results: one per plannable event, plus user attributes and identities."""
    out = []
    for finding in findings:
        data: dict[str, Any] = {"match": finding.match}
        if finding.index is not None:
            event = batch.events[finding.index]
            data["event_type"] = event.event_type
            data["validated_source_message_id"] = event.data.source_message_id
            if event_ids and finding.index in event_ids:
                data["validated_event_id"] = event_ids[finding.index]
        out.append({"data": data, "validation_errors": [_error(v) for v in finding.violations]})
    return out
