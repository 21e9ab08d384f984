"""Documented ingest limits (mParticle's default service limits) and the checks that enforce them."""

from collections.abc import Iterable, Mapping

from kaon.model.batch import Batch
from kaon.model.errors import LimitExceeded
from kaon.model.values import AttrValue

MAX_REQUEST_BYTES = 256 * 1024
MAX_MPARTICLE_BATCH_BYTES = 128 * 1024
MAX_BATCHES_PER_BULK = 100
MAX_SEGMENT_EVENT_BYTES = 32 * 1024
MAX_SEGMENT_BATCH_BYTES = 500 * 1024
MAX_USER_ATTRIBUTES = 100
MAX_ATTRIBUTE_VALUE_CHARS = 4096


def check_request_size(size: int) -> None:
    if size > MAX_REQUEST_BYTES:
        raise LimitExceeded(
            "REQUEST_TOO_LARGE",
            f"Request body is {size} bytes; the limit is 256 KB ({MAX_REQUEST_BYTES} bytes) per request.",
            413,
        )


def _check_values(values: Iterable[tuple[str, AttrValue]], where: str) -> None:
    for name, value in values:
        items = value if isinstance(value, list) else (value,)
        for item in items:
            if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_VALUE_CHARS:
                raise LimitExceeded(
                    "ATTRIBUTE_VALUE_TOO_LONG",
                    f"Attribute value is {len(item)} characters; the limit is "
                    f"{MAX_ATTRIBUTE_VALUE_CHARS} characters - at `{where}.{name}`",
                )


def check_attributes(attributes: Mapping[str, AttrValue] | None, where: str) -> None:
    if attributes:
        _check_values(attributes.items(), where)


def check_batch(batch: Batch, where: str = "$") -> None:
    """Count and length limits of one canonical batch; raises LimitExceeded naming the limit and place."""
    if len(batch.user_attributes) > MAX_USER_ATTRIBUTES:
        raise LimitExceeded(
            "TOO_MANY_USER_ATTRIBUTES",
            f"Batch has {len(batch.user_attributes)} user attributes; the limit is "
            f"{MAX_USER_ATTRIBUTES} user attributes per batch - at `{where}.user_attributes`",
        )
    check_attributes(batch.user_attributes, f"{where}.user_attributes")
    for index, event in enumerate(batch.events):
        check_attributes(event.data.custom_attributes, f"{where}.events[{index}].data.custom_attributes")
