"""RudderStack's transformer test fixtures (MIT) for destination tests: loading cases, adapting their messages.

Each case holds a Segment-spec `message` and what RudderStack sent for it. The adapters here turn such a
message into the DeliveryEvents Kaon would deliver; each destination's test keeps the mapping of the message
kinds it compares (which fields it carries over), built from these pieces.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kaon.destinations.event import DeliveryEvent, batch_event
from kaon.model import events as model
from kaon.model.segment import decode_segment, to_batches

FIXTURES = Path("/work/shared/conformance/rudderstack")

# Segment trait names as mParticle reserved user attributes.
SEGMENT_TRAITS = {"city": "$city", "country": "$country", "firstName": "$firstname", "lastName": "$lastname"}


def read_cases(file: str) -> list[dict[str, Any]]:
    """Every case of a fixture file (e.g. "ga4.json"), in its order."""
    cases: list[dict[str, Any]] = json.loads((FIXTURES / file).read_text())
    return cases


def fixture_case(file: str, name: str) -> dict[str, Any]:
    """The case named `name` (e.g. "ga4.json#15"); the test is skipped where the fixtures are not available."""
    if not (FIXTURES / file).exists():
        pytest.skip("RudderStack conformance fixtures not available")
    return {c["name"]: c for c in read_cases(file)}[name]


def segment_ms(message: dict[str, Any]) -> int:
    """The message's time in ms: `timestamp`, falling back to `originalTimestamp`."""
    raw = message.get("timestamp") or message.get("originalTimestamp")
    return int(datetime.fromisoformat(str(raw)).timestamp() * 1000)


def segment_fields(message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The DeliveryEvent fields but `event_id` and `event`: a fixed workspace, input and mpid, the message's
    id and time, and `fields`."""
    return dict(workspace_id="ws", input_id="in", mpid=1, source_message_id=message["messageId"],
                timestamp_ms=segment_ms(message), **fields)


def track_event(message: dict[str, Any]) -> model.CustomEvent:
    """A `track` call as a custom event: its name and properties."""
    return model.CustomEvent(data=model.CustomEventData(
        event_name=message["event"], custom_attributes=message.get("properties", {})))


def screen_event(name: str) -> model.ScreenView:
    return model.ScreenView(data=model.ScreenViewData(screen_name=name))


def purchase_event(currency: str | None, products: list[model.Product], **action: Any) -> model.CommerceEvent:
    """An "Order Completed" as a purchase; `action` adds ProductAction fields (transaction_id, total_amount, ...)."""
    return model.CommerceEvent(data=model.CommerceEventData(currency_code=currency, product_action=(
        model.ProductAction(action="purchase", products=products, **action))))


def identify_events(message: dict[str, Any], fields: dict[str, Any],
                    renames: dict[str, str] | None = None) -> list[DeliveryEvent]:
    """An `identify` call as one attribute change per trait (top-level `traits`, else `context.traits`),
    trait names renamed by `renames`; `fields` as from `segment_fields`."""
    traits = message.get("traits") or message.get("context", {}).get("traits", {})
    renames = renames or {}
    return [DeliveryEvent(event_id=n, event=model.UserAttributeChange(data=model.UserAttributeChangeData(
        user_attribute_name=renames.get(k, k), new=v)), **fields) for n, (k, v) in enumerate(traits.items())]


def kaon_events(message: dict[str, Any], received_ms: int, mpid: int | None = 1) -> list[DeliveryEvent]:
    """The input adapter with Kaon's own parts: the message through the Segment front door's decoder and
    adapter (context, revenue and all) into the DeliveryEvents fan-out makes of its batches; `mpid` stands in
    for identity resolution."""
    message = dict(message)
    # The transformer reads `timestamp`, falling back to `originalTimestamp` (rudder-server fills it in).
    message.setdefault("timestamp", message.get("originalTimestamp"))
    if not (message.get("userId") or message.get("anonymousId")):
        message["anonymousId"] = message.get("rudderId")  # RudderStack's own id for the anonymous user
    payload = decode_segment(message["type"], json.dumps(message).encode())
    out = []
    # RudderStack's `request_ip` is the sender's address, which Kaon's door records as the entry's ip.
    for batch in to_batches(payload, received_ms, message.get("request_ip")):
        batch.mpid = mpid
        out += [batch_event(batch, i, event_id=len(out) + i, workspace_id="ws", input_id="in", received_ms=received_ms)
                for i in range(len(batch.events))]
    return out
