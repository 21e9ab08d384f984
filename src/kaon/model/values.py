"""Scalar value types allowed in attributes, shared by the batch and event models."""

import math
from typing import Annotated, Any

import msgspec

Scalar = str | int | float | bool | None
MAX_ATTRIBUTE_VALUE_CHARS = 4096
# A string attribute value; the decoder enforces the length limit (cheaper than a scan in Python).
AttrStr = Annotated[str, msgspec.Meta(max_length=MAX_ATTRIBUTE_VALUE_CHARS)]
# Attribute values: scalars, or lists (user attribute lists; lenient for event attributes).
AttrValue = AttrStr | int | float | bool | None | list[Any]

# Integers Kaon stores as SQL integers must fit in a signed 64-bit column; larger ones are refused at the door.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


def as_number(value: object) -> float | None:
    """An attribute value as a number under mParticle's rule (numeric strings count); None if it is not a finite
    one. Data plans and audience conditions share this rule."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond a float's range
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        if "_" in value or len(value) > 400:  # Python reads "1_000" as a number; no one sends it as one
            return None
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
