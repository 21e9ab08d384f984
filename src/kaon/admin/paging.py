"""Cursor pagination for every admin list: `limit` and an opaque `cursor` (keyset positions, never offsets).

A cursor holds the sort key of the last row returned, a fingerprint of the list's path and filters, and the
points in time the first page resolved (`since=6h` means the same instant on every page). Rows that arrive
meanwhile never shift a page, and a cursor replayed with other filters, on another list, or tampered with is
400 `INVALID_CURSOR`.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Query, Request

from kaon.admin.errors import api_error

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CURSOR_CHARS = 2048
_VERSION = 1
_NOT_PAGING = frozenset({"limit", "cursor"})
T = TypeVar("T")
# A sort key: JSON scalars (ints, strings, null), checked against the list's key types when read back.
Key = tuple[Any, ...]


def invalid_cursor(why: str) -> HTTPException:
    return api_error(400, "INVALID_CURSOR", f"{why}; pass back the `next_cursor` of the previous page, with the same"
                                           " filters, or leave `cursor` out to start again - at `cursor`")


def fingerprint(request: Request) -> str:
    """The list this request reads: its path and every filter (paging parameters aside)."""
    filters = sorted((k, v) for k, v in request.query_params.multi_items() if k not in _NOT_PAGING)
    text = json.dumps([request.url.path, filters], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(position: Key, filters: str, pins: dict[str, int | None]) -> str:
    raw = json.dumps({"v": _VERSION, "f": filters, "k": list(position), "p": pins}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _scalar(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return value is None or (isinstance(value, str) and len(value) <= 1024)


def decode(cursor: str) -> tuple[str, list[Any], dict[str, int | None]]:
    """(filters fingerprint, position, pinned points) of a cursor; 400 INVALID_CURSOR when it does not parse."""
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise invalid_cursor("`cursor` is not a cursor of this API")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid_cursor("`cursor` is not a cursor of this API") from None
    if not (isinstance(body, dict) and body.get("v") == _VERSION and isinstance(body.get("f"), str)
            and isinstance(body.get("k"), list) and isinstance(body.get("p"), dict)
            and all(_scalar(v) for v in body["k"])
            and all(isinstance(k, str) and (v is None or (_scalar(v) and isinstance(v, int)))
                    for k, v in body["p"].items())):
        raise invalid_cursor("`cursor` is not a cursor of this API")
    return body["f"], body["k"], body["p"]


@dataclass
class Page:
    """One page request: how many rows, after which position, with which pinned points in time."""

    limit: int
    filters: str
    position: list[Any] | None = None
    pins: dict[str, int | None] = field(default_factory=dict)
    continued: bool = False  # a cursor was given: pins come from it

    def after(self, *types: type | tuple[type, ...]) -> Key | None:
        """The position to continue after, checked against the list's key types (None on the first page); a key
        that may be null names `type(None)` among its types."""
        if self.position is None:
            return None
        if len(self.position) != len(types) or not all(
                isinstance(v, t) for v, t in zip(self.position, types, strict=True)):
            raise invalid_cursor("`cursor` was made for another list")
        return tuple(self.position)

    def pin(self, name: str, resolve: Callable[[], int | None]) -> int | None:
        """A point in time resolved once, on the first page, and carried by the cursor to the next ones."""
        if self.continued:
            if name not in self.pins:
                raise invalid_cursor("`cursor` was made for another list")
            return self.pins[name]
        self.pins[name] = resolve()
        return self.pins[name]

    def take(self, rows: Sequence[T], key: Callable[[T], Key]) -> tuple[list[T], str | None]:
        """The page from up to `limit + 1` rows read, and the cursor of the next page (None when this is the last)."""
        page = list(rows[:self.limit])
        if len(rows) <= self.limit or not page:
            return page, None
        return page, self.cursor_after(key(page[-1]))

    def cursor_after(self, position: Key) -> str:
        """The cursor of the page that continues after `position` (for stores that page themselves)."""
        return encode(position, self.filters, self.pins)


def paging(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Rows per page, 1 to {MAX_LIMIT}.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page (opaque).")] = None,
) -> Page:
    filters = fingerprint(request)
    if cursor is None:
        return Page(limit=limit, filters=filters)
    made_for, position, pins = decode(cursor)
    if made_for != filters:
        raise invalid_cursor("`cursor` was made for another list or other filters")
    return Page(limit=limit, filters=filters, position=position, pins=pins, continued=True)


Paging = Annotated[Page, Depends(paging)]
