"""Scalar value types allowed in attributes, shared by the batch and event models."""

from typing import Any

Scalar = str | int | float | bool | None
# Attribute values: scalars, or lists (user attribute lists; lenient for event attributes).
AttrValue = str | int | float | bool | None | list[Any]
