"""Segment-spec wire structs and the collect hot path's decoding and validation of /v1/<kind> bodies.

Decoding is lenient where real SDKs disagree (ids and versions may be numbers, unknown fields such as
RudderStack's `channel`/`rudderId` are ignored, `type` is case-insensitive and, on single-call paths,
implied by the path) and strict where Segment is (required fields per call type, size limits).
"""

from typing import Any, Final

import msgspec

from kaon.model.errors import LimitExceeded, PayloadError, located
from kaon.model.integers import check_integers

# A field real SDKs send as a string or, sometimes, a number (ids, versions, build numbers).
Loose = str | int | float | None

MAX_EVENT_BYTES: Final = 32 * 1024
MAX_BATCH_BYTES: Final = 500 * 1024

CALL_TYPES: Final = frozenset({"track", "identify", "page", "screen", "group", "alias"})
KINDS: Final = CALL_TYPES | {"batch"}
# Segment's rule: these calls must name the user by `userId` or `anonymousId`.
_NEEDS_USER: Final = frozenset({"track", "identify", "page", "screen"})


class Wire(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    """Base for wire structs: camelCase JSON names, unknown fields ignored."""


class App(Wire, kw_only=True, frozen=True):
    name: str | None = None
    version: Loose = None
    build: Loose = None
    namespace: str | None = None


class Device(Wire, kw_only=True, frozen=True):
    id: Loose = None
    advertising_id: str | None = None
    ad_tracking_enabled: bool | None = None
    manufacturer: str | None = None
    model: str | None = None
    name: str | None = None
    type: str | None = None
    token: str | None = None


class Os(Wire, kw_only=True, frozen=True):
    name: str | None = None
    version: Loose = None


class Library(Wire, kw_only=True, frozen=True):
    name: str | None = None
    version: Loose = None


class Page(Wire, kw_only=True, frozen=True):
    path: str | None = None
    referrer: str | None = None
    search: str | None = None
    title: str | None = None
    url: str | None = None


class Screen(Wire, kw_only=True, frozen=True):
    width: int | float | None = None
    height: int | float | None = None
    density: int | float | None = None


class Location(Wire, kw_only=True, frozen=True):
    city: str | None = None
    country: str | None = None
    region: str | None = None
    latitude: int | float | None = None
    longitude: int | float | None = None


class Network(Wire, kw_only=True, frozen=True):
    carrier: str | None = None


class Referrer(Wire, kw_only=True, frozen=True):
    type: str | None = None
    name: str | None = None
    url: str | None = None
    link: str | None = None
    id: Loose = None


class Consent(Wire, kw_only=True, frozen=True):
    category_preferences: dict[str, bool] | None = None


class Context(Wire, kw_only=True, frozen=True):
    app: App | None = None
    device: Device | None = None
    os: Os | None = None
    ip: str | None = None
    library: Library | None = None
    locale: str | None = None
    page: Page | None = None
    screen: Screen | None = None
    user_agent: str | None = None
    timezone: str | None = None
    traits: dict[str, Any] | None = None
    # UTM parameters: `name`, `source`, `medium`, `term`, `content`, and any custom one.
    campaign: dict[str, Any] | None = None
    consent: Consent | None = None
    location: Location | None = None
    network: Network | None = None
    referrer: Referrer | None = None


class Call(Wire, kw_only=True, frozen=True):
    """One Segment call (track, identify, page, screen, group or alias) with the spec's common fields."""

    type: str | None = None
    user_id: Loose = None
    anonymous_id: Loose = None
    message_id: Loose = None
    timestamp: Loose = None
    original_timestamp: Loose = None
    sent_at: Loose = None
    received_at: Loose = None
    context: Context | None = None
    integrations: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: Loose = None
    previous_id: Loose = None
    write_key: str | None = None
    # RudderStack's SDKs say where they run ("server", "web", "mobile").
    channel: str | None = None


class _Envelope(Wire, kw_only=True, frozen=True):
    batch: list[msgspec.Raw]
    write_key: str | None = None
    context: Context | None = None
    integrations: dict[str, Any] | None = None
    sent_at: Loose = None


class SegmentPayload(msgspec.Struct, kw_only=True, frozen=True):
    """A decoded, validated /v1/<kind> body: its calls (each with a lower-case `type`) and batch fields."""

    calls: list[Call]
    write_key: str | None = None
    # Batch-level fields of /v1/batch; a call's own fields take precedence over them.
    context: Context | None = None
    integrations: dict[str, Any] | None = None
    sent_at: Loose = None


_CALL = msgspec.json.Decoder(Call, strict=False)
_ENVELOPE = msgspec.json.Decoder(_Envelope, strict=False)


def decode_segment(kind: str, body: bytes) -> SegmentPayload:
    """Decode and validate the body of `POST /v1/<kind>`; raise PayloadError (or LimitExceeded) if refused.

    `kind` must be one of KINDS (the router's business, so a ValueError otherwise).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown Segment path kind {kind!r}")
    check_integers(body)
    if kind == "batch":
        return _decode_batch(body)
    if len(body) > MAX_EVENT_BYTES:
        raise _event_too_large(len(body), "$")
    call = _decode_call(body, "$")
    if call.type != kind:
        call = msgspec.structs.replace(call, type=kind)
    _check(call, "$")
    return SegmentPayload(calls=[call], write_key=call.write_key)


def _decode_batch(body: bytes) -> SegmentPayload:
    if len(body) > MAX_BATCH_BYTES:
        raise LimitExceeded(
            "BATCH_TOO_LARGE",
            f"batch is {len(body)} bytes; the limit is {MAX_BATCH_BYTES} bytes (500 KB)",
            413,
        )
    try:
        envelope = _ENVELOPE.decode(body)
    except msgspec.MsgspecError as error:
        raise located(error, "$") from None
    except RecursionError:
        raise PayloadError("INVALID_JSON", "JSON is nested too deeply - at `$`") from None
    if not envelope.batch:
        raise PayloadError("INVALID_SHAPE", "`batch` must not be empty - at `$.batch`")
    calls: list[Call] = []
    for index, raw in enumerate(envelope.batch):
        where = f"$.batch[{index}]"
        if len(raw) > MAX_EVENT_BYTES:
            raise _event_too_large(len(raw), where)
        call = _decode_call(raw, where)
        if call.type is None:
            raise PayloadError("INVALID_SHAPE", f"`type` is required - at `{where}`")
        kind = call.type.lower()
        if kind not in CALL_TYPES:
            raise PayloadError(
                "INVALID_SHAPE", f"`type` must be one of {', '.join(sorted(CALL_TYPES))} - at `{where}.type`"
            )
        if kind != call.type:
            call = msgspec.structs.replace(call, type=kind)
        _check(call, where)
        calls.append(call)
    write_key = envelope.write_key or calls[0].write_key
    return SegmentPayload(
        calls=calls,
        write_key=write_key,
        context=envelope.context,
        integrations=envelope.integrations,
        sent_at=envelope.sent_at,
    )


def _decode_call(data: bytes | msgspec.Raw, where: str) -> Call:
    try:
        return _CALL.decode(data)
    except msgspec.MsgspecError as error:
        raise located(error, where) from None
    except RecursionError:
        raise PayloadError("INVALID_JSON", f"JSON is nested too deeply - at `{where}`") from None


def _check(call: Call, where: str) -> None:
    """Segment's per-type required fields; `where` is the call's JSON path for the message."""
    kind = call.type
    if kind == "track":
        if call.event is None:
            raise PayloadError("INVALID_SHAPE", f"`event` is required - at `{where}`")
        if not call.event.strip():
            raise PayloadError("INVALID_SHAPE", f"`event` must not be empty - at `{where}.event`")
    if kind in _NEEDS_USER and present(call.user_id) is None and present(call.anonymous_id) is None:
        raise PayloadError("INVALID_SHAPE", f"`userId` or `anonymousId` is required - at `{where}`")
    if kind == "group" and present(call.group_id) is None:
        raise PayloadError("INVALID_SHAPE", f"`groupId` is required - at `{where}`")
    if kind == "alias":
        # Segment's spec: previousId is optional and defaults to the call's anonymousId.
        if present(call.previous_id) is None and present(call.anonymous_id) is None:
            raise PayloadError("INVALID_SHAPE",
                               f"`previousId` (or `anonymousId`, its default) is required - at `{where}`")
        if present(call.user_id) is None:
            raise PayloadError("INVALID_SHAPE", f"`userId` is required - at `{where}`")


def present(value: Loose) -> str | None:
    """An id as a string, or None when absent or empty (numbers are accepted and stringified)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else str(value)
    return text if text else None


def _event_too_large(size: int, where: str) -> LimitExceeded:
    return LimitExceeded(
        "EVENT_TOO_LARGE",
        f"event is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes (32 KB) per event - at `{where}`",
        400,
    )
