"""Time parameters of the admin API: points in time (`since`, `until`), parsed by kaon.durations."""

from typing import Annotated

from fastapi import HTTPException, Query

from kaon.admin.errors import api_error
from kaon.durations import POINT_FORMS, DurationError, parse_point

SINCE_DOC = f"Start of the window, inclusive: {POINT_FORMS}."
UNTIL_DOC = f"End of the window, exclusive: {POINT_FORMS}."

# Query strings arrive as text; kaon.durations tells the forms apart (digits are unix ms, `6h` is 6 hours ago).
Since = Annotated[str | None, Query(max_length=64, description=SINCE_DOC)]
Until = Annotated[str | None, Query(max_length=64, description=UNTIL_DOC)]


def invalid(name: str, error: DurationError) -> HTTPException:
    return api_error(400, "INVALID_DURATION", f"{error} - at `{name}`")


def point(name: str, value: str | int | None, now_ms: int) -> int | None:
    """The point in time `value` names (None when not given); 400 INVALID_DURATION naming `name` otherwise."""
    if value is None:
        return None
    try:
        return parse_point(value, now_ms)
    except DurationError as error:
        raise invalid(name, error) from None

