"""Scalar value types allowed in attributes, shared by the batch and event models."""

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
