"""An audience connection's settings: which identity types to send and the connection rules (consent, ...)."""

from typing import Any, Literal

import msgspec

from kaon.connections.rules import Rules, parse_rules
from kaon.model.identities import DEVICE_IDENTITY_TYPES, USER_IDENTITY_TYPES

IDENTITY_TYPES = frozenset(USER_IDENTITY_TYPES) | frozenset(DEVICE_IDENTITY_TYPES)


class ConnectionSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # `sync` keeps the output's list in step (outputs that can); `trigger` sends each change as an event (outputs
    # that take events). None: sync where the output can, else trigger.
    mode: Literal["sync", "trigger"] | None = None
    # Identity types to send (canonical names); None: every type the output accepts.
    identity_types: list[str] | None = None
    # The rules of kaon.connections (filters, forwarding, consent, sampling, transformations): an add (or, for a
    # trigger, any change) they drop is not sent. Removals of what was sent always go.
    rules: dict[str, Any] = {}
    # The output's own settings for this audience (a sync connection): what its `connection_settings_type` asks.
    output: dict[str, Any] = {}

    def __post_init__(self) -> None:
        unknown = sorted(set(self.identity_types or ()) - IDENTITY_TYPES)
        if unknown:
            raise ValueError(f"unknown identity types: {', '.join(unknown)}")
        if self.identity_types is not None and not self.identity_types:
            raise ValueError("identity_types: give at least one, or leave it out for every type")

    def parsed_rules(self) -> Rules:
        return parse_rules(self.rules)


def parse_settings(raw: object) -> ConnectionSettings:
    """Raises ValueError (or msgspec.ValidationError, a ValueError) with what is wrong."""
    settings = msgspec.convert(raw if raw is not None else {}, ConnectionSettings)
    settings.parsed_rules()
    return settings
