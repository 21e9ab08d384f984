"""Documented ingest limits (mParticle's default service limits) and the checks that enforce them."""

from collections.abc import Iterable, Mapping

from kaon.model.batch import Batch
from kaon.model.errors import LimitExceeded
from kaon.model.values import MAX_ATTRIBUTE_VALUE_CHARS, AttrValue

MAX_REQUEST_BYTES = 256 * 1024
MAX_MPARTICLE_BATCH_BYTES = 128 * 1024
MAX_BATCHES_PER_BULK = 100
MAX_SEGMENT_EVENT_BYTES = 32 * 1024
MAX_SEGMENT_BATCH_BYTES = 500 * 1024
MAX_USER_ATTRIBUTES = 100


def check_request_size(size: int) -> None:
    if size > MAX_REQUEST_BYTES:
        raise LimitExceeded(
            "REQUEST_TOO_LARGE",
            f"Request body is {size} bytes; the limit is 256 KB ({MAX_REQUEST_BYTES} bytes) per request.",
            413,
        )


def _check_values(values: Iterable[tuple[str, AttrValue]], where: str, lists_only: bool = False) -> None:
    for name, value in values:
        if lists_only and not isinstance(value, list):
            continue
        items = value if isinstance(value, list) else (value,)
        for item in items:
            if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_VALUE_CHARS:
                raise LimitExceeded(
                    "ATTRIBUTE_VALUE_TOO_LONG",
                    f"Attribute value is {len(item)} characters; the limit is "
                    f"{MAX_ATTRIBUTE_VALUE_CHARS} characters - at `{where}.{name}`",
                )


def check_attributes(attributes: Mapping[str, AttrValue] | None, where: str, lists_only: bool = False) -> None:
    if attributes:
        _check_values(attributes.items(), where, lists_only)


def check_batch(batch: Batch, where: str = "$", decoded: bool = False) -> None:
    """Count and length limits of one canonical batch; raises LimitExceeded naming the limit and place.

    `decoded`: the batch came through the typed decoder, which already refused over-long string values,
    so only list entries need a look.
    """
    if len(batch.user_attributes) > MAX_USER_ATTRIBUTES:
        raise LimitExceeded(
            "TOO_MANY_USER_ATTRIBUTES",
            f"Batch has {len(batch.user_attributes)} user attributes; the limit is "
            f"{MAX_USER_ATTRIBUTES} user attributes per batch - at `{where}.user_attributes`",
        )
    check_attributes(batch.user_attributes, f"{where}.user_attributes", decoded)
    for index, event in enumerate(batch.events):
        check_attributes(event.data.custom_attributes, f"{where}.events[{index}].data.custom_attributes", decoded)


def locate_long_value(document: object, where: str = "$") -> LimitExceeded | None:
    """Find the over-long attribute value in a generically decoded batch (only on the error path)."""
    if not isinstance(document, dict):
        return None
    places: list[tuple[str, object]] = [(f"{where}.user_attributes", document.get("user_attributes"))]
    events = document.get("events")
    if isinstance(events, list):
        for index, event in enumerate(events):
            data = event.get("data") if isinstance(event, dict) else None
            if isinstance(data, dict):
                places.append((f"{where}.events[{index}].data.custom_attributes", data.get("custom_attributes")))
    for place, attributes in places:
        if isinstance(attributes, dict):
            try:
                _check_values(attributes.items(), place)
            except LimitExceeded as error:
                return error
    return None
