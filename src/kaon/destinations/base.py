"""The destination contract (decision 5): a name, a settings model, a pure transform and a send policy.

A destination module defines a `Destination` subclass instance named `destination`, and registers it in
the `kaon.destinations` entry-point group (built-ins register exactly like third-party packages). Settings
are a msgspec Struct whose fields carry `Meta(title=..., description=..., examples=[...])`; a field typed
`Secret` is never returned by the API nor logged. Every HTTP destination has a `base_url` setting.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import msgspec

from kaon import outbound
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import HttpResponse, SendPolicy, SendResult, classify_http

SECRET_MARK = "x-kaon-secret"
PLACEHOLDER = "********"  # what the API shows for a secret; given back in a PATCH, it keeps the stored one
Secret = Annotated[str, msgspec.Meta(extra_json_schema={SECRET_MARK: True})]


@dataclass(frozen=True)
class HttpRequest:
    """One request to a vendor, carrying the positions (in the transformed list) of the events it holds."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    event_indices: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


class Destination:
    """Base of every destination. HTTP destinations implement `transform`; others override `deliver`."""

    name: ClassVar[str]
    title: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str]
    settings_type: ClassVar[type[msgspec.Struct]]
    policy: ClassVar[SendPolicy] = SendPolicy()
    supports_deletion: ClassVar[bool] = False
    # An audience output: it is given membership changes (kaon.activation.membership) of audience connections,
    # and sends adds and removes of the identity types it accepts. Any other output given an audience connection
    # receives the changes as `audience_membership_change` events (triggers).
    audience: ClassVar[bool] = False
    identity_types: ClassVar[tuple[str, ...]] = ()  # canonical identity types an audience output sends
    takes_events: ClassVar[bool] = True  # ordinary events (and so audience triggers); False: audiences only
    # What each audience connection to it sets (`settings.output` of the connection: Customer.io's segment,
    # Iterable's list); None: nothing. The membership changes carry them (Membership.settings).
    connection_settings_type: ClassVar[type[msgspec.Struct] | None] = None

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        """Pure: the vendor requests for these events (at most `policy.batch_size`). Events a destination
        cannot express are left out of every request's `event_indices` (they are then counted as skipped)."""
        raise NotImplementedError

    def deliver(self, events: Sequence[DeliveryEvent], settings: Any) -> list[SendResult] | None:
        """Non-HTTP destinations (files, databases) write here and return one result per event; HTTP
        destinations leave this as is (None) and implement `transform`."""
        return None

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        """The outcome of one response; override for vendors that answer 2xx with errors, etc."""
        return classify_http(response)

    def check_outbound(self, settings: Any) -> None:
        """Raises outbound.Refused when these settings point at an address the outbound policy refuses
        (checked when an output is saved; every request is checked again). The default checks `base_url`."""
        url = getattr(settings, "base_url", None)
        if isinstance(url, str):
            outbound.check_url(url)

    def parse_settings(self, raw: dict[str, Any]) -> Any:
        return msgspec.convert(raw, self.settings_type)

    def settings_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = msgspec.json.schema(self.settings_type)
        return schema


def secret_fields(destination: Destination) -> set[str]:
    """Names of the settings marked secret."""
    schema = destination.settings_schema()
    definitions = schema.get("$defs", {})
    target = schema
    if "$ref" in schema:
        target = definitions[schema["$ref"].split("/")[-1]]
    def marked(spec: dict[str, Any]) -> bool:
        return bool(spec.get(SECRET_MARK)) or any(marked(s) for s in spec.get("anyOf", ()))

    return {name for name, spec in target.get("properties", {}).items() if marked(spec)}


def redact(destination: Destination, settings: dict[str, Any]) -> dict[str, Any]:
    """Secrets shown as the placeholder; a map of secrets (webhook headers) keeps its names."""
    secrets = secret_fields(destination)

    def hidden(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: PLACEHOLDER for k in value}
        return PLACEHOLDER if value else value

    return {k: (hidden(v) if k in secrets else v) for k, v in settings.items()}
