"""The closed vocabulary of what happened to a send, and the default HTTP classifier.

delivered   the destination took everything
retry       nothing was taken; try again later (after `retry_after_s` when the vendor said so)
retry_part  some events were taken; retry only `retry_indices`
abort       the destination refused for good (bad request, auth): dead-letter, do not retry
skip        nothing to send for these events (filtered by the destination itself)
"""

import enum
from dataclasses import dataclass, field

import msgspec


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    RETRY_PART = "retry_part"
    ABORT = "abort"
    SKIP = "skip"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message: str = ""
    status: int | None = None
    retry_after_s: float | None = None
    # For RETRY_PART, and partial ABORT/DELIVERED: the events (values of the request's `event_indices`,
    # i.e. positions in the list given to `transform`) to retry, or that the vendor refused.
    retry_indices: tuple[int, ...] = ()
    failed_indices: tuple[int, ...] = ()
    response_body: str = ""


class HttpResponse(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]
    body: bytes


def retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify_http(response: HttpResponse) -> SendResult:
    """2xx delivered; 408, 429, 5xx retried (honouring Retry-After); other 4xx aborted."""
    status = response.status
    text = response.body[:2000].decode("utf-8", "replace")
    if 200 <= status < 300:
        return SendResult(Outcome.DELIVERED, status=status, response_body=text)
    if status in (408, 429) or status >= 500:
        return SendResult(Outcome.RETRY, f"HTTP {status}", status, retry_after(response.headers), response_body=text)
    return SendResult(Outcome.ABORT, f"HTTP {status}: {text[:300]}", status, response_body=text)


@dataclass(frozen=True)
class SendPolicy:
    """How a destination wants to be called: events per request, parallel requests, requests per second."""

    batch_size: int = 1
    max_concurrency: int = 4
    rate_limit_rps: float | None = None
    timeout_s: float = 30.0
    max_request_bytes: int = 1_000_000
    extra: dict[str, object] = field(default_factory=dict)
