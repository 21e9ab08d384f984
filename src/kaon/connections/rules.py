"""The rules of a connection, as data (validated once, evaluated in the fixed order of decision 6)."""

from typing import Any, Literal

import msgspec


class NameList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `allow` or `deny`."""

    allow: list[str] | None = None
    deny: list[str] | None = None

    def __post_init__(self) -> None:
        if (self.allow is None) == (self.deny is None):
            raise ValueError("give exactly one of `allow` or `deny`")

    def passes(self, value: str | None) -> bool:
        if self.allow is not None:
            return value is not None and value in self.allow
        return value is None or value not in (self.deny or [])


class Filters(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """mParticle's data filter: which event types and names pass, and which event attributes are removed."""

    event_types: NameList | None = None
    event_names: NameList | None = None
    attributes: NameList | None = None


class ForwardingRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Forward only users/events that match (`only`) or do not match (`except`) a condition.

    A missing attribute counts as present with a value that does not match (mParticle's rule); matching is
    exact and case-sensitive.
    """

    source: Literal["event_attribute", "user_attribute", "identity"]
    name: str
    values: list[str]
    match: Literal["only", "except"] = "only"


class ConsentRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    gdpr_purposes: list[str] = []
    honor_ccpa_opt_out: bool = True


class Transformation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """rename (from → to), drop (attribute), set (attribute = value), hash (attribute, SHA-256),
    map_event_name (from → to)."""

    op: Literal["rename", "drop", "set", "hash", "map_event_name"]
    attribute: str | None = None
    value: Any = None
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None

    def __post_init__(self) -> None:
        needs = {"rename": ("from_", "to"), "drop": ("attribute",), "set": ("attribute",), "hash": ("attribute",),
                 "map_event_name": ("from_", "to")}[self.op]
        missing = [n.rstrip("_") for n in needs if getattr(self, n) is None]
        if missing:
            raise ValueError(f"`{self.op}` needs {', '.join(missing)}")


class Rules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    filters: Filters | None = None
    forwarding: list[ForwardingRule] = []
    logged_in_only: bool = False
    consent: ConsentRule | None = None
    sampling_percent: float = 100.0
    transformations: list[Transformation] = []

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_percent <= 100:
            raise ValueError("sampling_percent must be between 0 and 100")


def parse_rules(raw: dict[str, Any]) -> Rules:
    return msgspec.convert(raw, Rules)
