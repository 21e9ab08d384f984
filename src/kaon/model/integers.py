"""Integers outside signed 64 bits are refused at the door: SQLite and msgpack cannot hold them."""

import re
from typing import Any

import msgspec

from kaon.model.errors import PayloadError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Every integer outside int64 has 20+ digits, or 19 starting with 9: bodies without such a run skip the walk.
_MAYBE_LONG = re.compile(rb"\d{20}|9\d{18}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_integers(body: bytes, where: str = "$") -> None:
    """Raise PayloadError `INTEGER_OUT_OF_RANGE` naming the JSON path of the first integer outside int64."""
    if _MAYBE_LONG.search(body) is None:
        return
    try:
        document = msgspec.json.decode(body)
    except (msgspec.MsgspecError, RecursionError):
        return  # the typed decoder reports malformed JSON
    stack: list[tuple[Any, str]] = [(document, where)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise PayloadError(
                    "INTEGER_OUT_OF_RANGE",
                    f"integer {str(value)[:40]} is outside the signed 64-bit range (-2^63 to 2^63-1); "
                    f"send it as a string - at `{path}`",
                )
        elif isinstance(value, dict):
            stack.extend((v, _key(path, k)) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value))))


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if _NAME.fullmatch(key) else f"{path}[{msgspec.json.encode(key).decode()}]"
