"""Which events a criterion or a calculated attribute looks at: event type, name, custom event type, conditions."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaon.audiences.conditions import Condition, compile_condition
from kaon.audiences.errors import DefinitionError
from kaon.audiences.facts import Fact

EVENT_TYPES = ("custom_event", "screen_view", "commerce_event", "session_start", "session_end", "crash_report",
               "opt_out", "first_run", "application_state_transition", "push_registration", "push_message",
               "network_performance", "breadcrumb", "profile", "user_attribute_change", "user_identity_change",
               "uninstall", "media")
MAX_CONDITIONS = 50
MAX_NAME = 256


@dataclass(frozen=True)
class AttributeTest:
    name: str  # lower-cased attribute name
    condition: Condition

    def passes(self, attributes: Mapping[str, Any]) -> bool:
        return self.condition.matches(attributes.get(self.name))


def compile_tests(raw: object, pointer: str, key: str = "attribute_name") -> tuple[AttributeTest, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DefinitionError(pointer, "must be a list of conditions")
    if len(raw) > MAX_CONDITIONS:
        raise DefinitionError(pointer, f"holds at most {MAX_CONDITIONS} conditions")
    out = []
    for i, item in enumerate(raw):
        where = f"{pointer}/{i}"
        if not isinstance(item, dict):
            raise DefinitionError(where, "must be an object")
        name = item.get(key, item.get("name"))
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise DefinitionError(f"{where}/{key}", f"is required (a name of at most {MAX_NAME} characters)")
        out.append(AttributeTest(name.lower(), compile_condition(item, where)))
    return tuple(out)


@dataclass(frozen=True)
class EventMatch:
    event_type: str | None = None
    name: str | None = None  # lower-cased
    custom_event_type: str | None = None  # lower-cased
    tests: tuple[AttributeTest, ...] = ()
    product_tests: tuple[AttributeTest, ...] = ()

    def kind_matches(self, fact: Fact) -> bool:
        if self.event_type is not None and fact.event_type != self.event_type:
            return False
        if self.name is not None and (fact.name or "").lower() != self.name and fact.action != self.name:
            return False
        return self.custom_event_type is None or self.custom_event_type in (fact.custom_event_type, fact.action)

    def matches(self, fact: Fact) -> bool:
        if not self.kind_matches(fact) or not all(t.passes(fact.attributes) for t in self.tests):
            return False
        return not self.product_tests or any(all(t.passes(p) for t in self.product_tests) for p in fact.products)


def _text(raw: Mapping[str, Any], key: str, pointer: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise DefinitionError(f"{pointer}/{key}", f"must be a non-empty string of at most {MAX_NAME} characters")
    return value.lower()


def compile_match(raw: Mapping[str, Any], pointer: str, *, conditions_key: str = "conditions") -> EventMatch:
    """`event_type`, `event_name` (or `name`), `custom_event_type`, `conditions`, `product_conditions`."""
    event_type = _text(raw, "event_type", pointer)
    if event_type is not None and event_type not in EVENT_TYPES:
        raise DefinitionError(f"{pointer}/event_type", f"unknown event type {event_type!r}: one of "
                              f"{', '.join(EVENT_TYPES)}")
    name_key = "event_name" if "event_name" in raw else "name"
    return EventMatch(
        event_type=event_type, name=_text(raw, name_key, pointer),
        custom_event_type=_text(raw, "custom_event_type", pointer),
        tests=compile_tests(raw.get(conditions_key), f"{pointer}/{conditions_key}"),
        product_tests=compile_tests(raw.get("product_conditions"), f"{pointer}/product_conditions"),
    )
