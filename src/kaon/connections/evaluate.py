"""Evaluating a connection's rules on one event, in the fixed order: filters → forwarding → consent →
sampling → transformations. Pure: the profile facts are given."""

import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec

from kaon.connections.rules import Rules
from kaon.destinations.event import DeliveryEvent
from kaon.model.events import CommerceEventData, CustomEventData, ScreenViewData, event_name


@dataclass(frozen=True)
class ProfileFacts:
    """What the rules need to know about the event's profile at the time of the event."""

    consent: dict[str, Any]
    opted_out: bool = False


@dataclass(frozen=True)
class Decision:
    forward: bool
    reason: str = ""
    event: DeliveryEvent | None = None


def sampled_in(mpid: int | None, percent: float) -> bool:
    """Stable per user: the same mpid is always in or out at a given percentage."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.sha256(str(mpid).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


def _value_of(item: DeliveryEvent, source: str, name: str) -> str | None:
    if source == "event_attribute":
        value = (item.event.data.custom_attributes or {}).get(name)
    elif source == "user_attribute":
        value = item.user_attributes.get(name)
    else:
        value = item.user_identities.get(name)
    return None if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _consented(facts: ProfileFacts, rules: Rules) -> str:
    consent = rules.consent
    if consent is None:
        return ""
    gdpr = facts.consent.get("gdpr", {})
    for purpose in consent.gdpr_purposes:
        record = gdpr.get(purpose.strip().lower())
        if not record or not record.get("consented"):
            return f"consent:gdpr:{purpose}"
    if consent.honor_ccpa_opt_out:
        record = facts.consent.get("ccpa", {}).get("data_sale_opt_out")
        if record and record.get("consented"):  # CCPA: consented = opted OUT of sale
            return "consent:ccpa_opt_out"
    return ""


def _transform(item: DeliveryEvent, rules: Rules) -> DeliveryEvent:
    data = item.event.data
    attributes = dict(data.custom_attributes or {})
    if rules.filters is not None and rules.filters.attributes is not None:
        attributes = {k: v for k, v in attributes.items() if rules.filters.attributes.passes(k)}
    name = event_name(item.event)
    for step in rules.transformations:
        if step.op == "rename" and step.from_ in attributes and step.to is not None:
            attributes[step.to] = attributes.pop(step.from_)
        elif step.op == "drop" and step.attribute is not None:
            attributes.pop(step.attribute, None)
        elif step.op == "set" and step.attribute is not None:
            attributes[step.attribute] = step.value
        elif step.op == "hash" and step.attribute in attributes:
            raw = attributes[step.attribute]
            attributes[step.attribute] = hashlib.sha256(str(raw).strip().lower().encode()).hexdigest()
        elif step.op == "map_event_name" and name == step.from_ and step.to is not None:
            name = step.to
    changes: dict[str, Any] = {"custom_attributes": attributes or None}
    if isinstance(data, CustomEventData | CommerceEventData) and name != event_name(item.event):
        changes["event_name"] = name
    elif isinstance(data, ScreenViewData) and name != event_name(item.event):
        # Fix: a screen view's name (what filters match) is its screen_name; map_event_name was a silent no-op.
        changes["screen_name"] = name
    new_data = msgspec.structs.replace(data, **changes)
    return msgspec.structs.replace(item, event=msgspec.structs.replace(item.event, data=new_data))


def evaluate(rules: Rules, item: DeliveryEvent, facts: ProfileFacts) -> Decision:
    if facts.opted_out:
        return Decision(False, "opted_out")
    filters = rules.filters
    if filters is not None:
        if filters.event_types is not None and not filters.event_types.passes(item.event_type):
            return Decision(False, "filter:event_type")
        if filters.event_names is not None and not filters.event_names.passes(event_name(item.event)):
            return Decision(False, "filter:event_name")
    for rule in rules.forwarding:
        matches = _value_of(item, rule.source, rule.name) in rule.values
        if matches != (rule.match == "only"):
            return Decision(False, f"forwarding:{rule.source}:{rule.name}")
    if rules.logged_in_only and not item.user_identities.get("customer_id"):
        return Decision(False, "forwarding:logged_in_only")
    reason = _consented(facts, rules)
    if reason:
        return Decision(False, reason)
    if not sampled_in(item.mpid, rules.sampling_percent):
        return Decision(False, "sampling")
    return Decision(True, event=_transform(item, rules))
