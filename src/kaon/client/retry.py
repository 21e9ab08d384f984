"""Pure retry policy: how an answer is classified and how long to wait before the next attempt."""

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0

RETRYABLE_STATUSES = frozenset({408, 429})

Action = Literal["delivered", "retry", "abort"]


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def classify(status: int, headers: Mapping[str, str]) -> Decision:
    """2xx delivered; 408, 429 and 5xx retried (honouring Retry-After); any other answer aborted."""
    if 200 <= status < 300:
        return Decision("delivered")
    if status in RETRYABLE_STATUSES or status >= 500:
        return Decision("retry", parse_retry_after(headers.get("retry-after")))
    return Decision("abort")


def backoff(attempt: int, retry_after: float | None, random: Callable[[], float]) -> float:
    """Delay before retry number `attempt` (0-based): the server's Retry-After if given, else
    exponential from BACKOFF_BASE capped at BACKOFF_CAP, with the upper half jittered."""
    if retry_after is not None:
        return retry_after
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return ceiling / 2 + random() * ceiling / 2
