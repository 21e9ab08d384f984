"""mParticle Events API batches: decode (strict about shape, lenient where real SDKs deviate) and normalise."""

import hashlib

import msgspec

from kaon.model import limits
from kaon.model.batch import ENVIRONMENTS, Batch, SourceInfo
from kaon.model.errors import LimitExceeded, PayloadError, located
from kaon.model.events import (
    CommerceEvent,
    CommerceEventData,
    CrashReport,
    CrashReportData,
    Event,
)
from kaon.model.identities import canonical_identity
from kaon.model.integers import check_integers

_batch_decoder = msgspec.json.Decoder(Batch, strict=False)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_MESSAGE_ID_NAMESPACE = bytes.fromhex("6f1d6a1e7c574d0c9a3e2f9e6b6b0a11")


def generated_message_id(name: str) -> str:
    """uuid5(namespace, name) as a string, built directly (uuid.uuid5 + str costs ~3x more)."""
    digest = bytearray(hashlib.sha1(_MESSAGE_ID_NAMESPACE + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _decode_one(body: bytes | msgspec.Raw, where: str, check_limits: bool = True) -> Batch:
    try:
        batch = _batch_decoder.decode(body)
    except msgspec.ValidationError as error:
        if "of length <=" in str(error):
            too_long = limits.locate_long_value(msgspec.json.decode(body), where)
            if too_long is not None:
                raise too_long from None
        raise located(error, where) from None
    except msgspec.MsgspecError as error:
        raise located(error, where) from None
    except RecursionError:
        raise PayloadError("INVALID_JSON", f"JSON is nested too deeply - at `{where}`") from None
    if batch.environment not in ENVIRONMENTS:
        raise PayloadError(
            "INVALID_SHAPE",
            f"environment must be one of development, production - at `{where}.environment`",
        )
    if check_limits:
        limits.check_batch(batch, where, decoded=True)
    return batch


def decode_batch(body: bytes, check_limits: bool = True) -> Batch:
    """One batch (`/v2/events`, web SDK `/v3/JS/{key}/events`); `check_limits=False` for accepted entries."""
    if len(body) > limits.MAX_MPARTICLE_BATCH_BYTES:
        raise _batch_too_large(len(body), "$")
    if check_limits:
        check_integers(body)
    return _decode_one(body, "$", check_limits)


def decode_bulk(body: bytes, check_limits: bool = True) -> list[Batch]:
    """A JSON array of at most 100 batches (`/v2/bulkevents`)."""
    if check_limits:
        check_integers(body)
    try:
        raws = _raw_list_decoder.decode(body)
    except msgspec.MsgspecError as error:
        raise located(error, "$") from None
    except RecursionError:
        raise PayloadError("INVALID_JSON", "JSON is nested too deeply - at `$`") from None
    if not raws:
        raise PayloadError("INVALID_SHAPE", "Bulk request holds no batches - at `$`")
    if len(raws) > limits.MAX_BATCHES_PER_BULK:
        raise LimitExceeded(
            "TOO_MANY_BATCHES",
            f"Bulk request holds {len(raws)} batches; the limit is "
            f"{limits.MAX_BATCHES_PER_BULK} batches per request.",
        )
    batches = []
    for index, raw in enumerate(raws):
        if len(raw) > limits.MAX_MPARTICLE_BATCH_BYTES:
            raise _batch_too_large(len(raw), f"$[{index}]")
        batches.append(_decode_one(raw, f"$[{index}]", check_limits))
    return batches


def _batch_too_large(size: int, where: str) -> LimitExceeded:
    return LimitExceeded(
        "BATCH_TOO_LARGE",
        f"Batch is {size} bytes; the limit is 128 KB ({limits.MAX_MPARTICLE_BATCH_BYTES} bytes) "
        f"per batch - at `{where}`",
        413,
    )


def _fix_event(event: Event) -> Event:
    data = event.data
    if (
        isinstance(event, CommerceEvent)
        and isinstance(data, CommerceEventData)
        and data.product_action is None
        and data.promotion_action is None
        and not data.product_impressions
        and (data.severity is not None or data.message is not None or data.class_name is not None)
    ):
        # The Python SDK's CrashReportEvent is sent as a commerce event: reclassify it.
        fields = {f: getattr(data, f) for f in CrashReportData.__struct_fields__ if hasattr(data, f)}
        return CrashReport(data=CrashReportData(**fields))
    return event


def session_id_for(session_uuid: str) -> int:
    """A stable signed 64-bit session id derived from a session UUID (as mParticle derives it)."""
    digest = hashlib.sha256(session_uuid.upper().encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def normalize(batch: Batch, *, received_ms: int, ip: str | None, channel: str, seed: str) -> Batch:
    """Apply the lenient fixes of the wire-format reference §10.2 to a decoded batch, in place.

    `seed` makes generated message ids stable: normalising the same log entry twice gives the same ids.
    """
    identities: dict[str, str | None] = {}
    for name, value in (batch.user_identities or {}).items():
        if value is not None and value != "":
            identities[canonical_identity(name)] = value
    batch.user_identities = identities
    if batch.ip is None:
        batch.ip = ip
    if batch.source_info is None:
        batch.source_info = SourceInfo(channel=channel)
    else:
        batch.source_info.channel = channel
    batch.timestamp_unixtime_ms = received_ms
    events = []
    for index, original in enumerate(batch.events):
        event = _fix_event(original)
        data = event.data
        if data.timestamp_unixtime_ms is None:
            data.timestamp_unixtime_ms = received_ms
        if not data.source_message_id:
            data.source_message_id = generated_message_id(f"{seed}:{index}")
        if data.session_id is None and data.session_uuid:
            data.session_id = session_id_for(data.session_uuid)
        events.append(event)
    batch.events = events
    return batch
