"""Turning the results of a destination's requests into one result per job."""

from collections.abc import Sequence

from kaon.destinations.base import HttpRequest
from kaon.destinations.outcome import Outcome, SendResult

SKIPPED = SendResult(Outcome.SKIP, "the destination does not take this event")
# Not sent because an earlier event of the same user just failed: not an attempt, it simply waits.
WAITING = SendResult(Outcome.RETRY, "waiting for an earlier event of the same user")


def per_event(count: int, requests: Sequence[HttpRequest], results: Sequence[SendResult]) -> list[SendResult]:
    """The result for each of `count` transformed events: its request's outcome, narrowed for partial ones."""
    out: list[SendResult] = [SKIPPED] * count
    for request, result in zip(requests, results, strict=True):
        for index in request.event_indices:
            if result.outcome == Outcome.RETRY_PART:
                again = index in result.retry_indices
                out[index] = (SendResult(Outcome.RETRY, result.message, result.status, result.retry_after_s)
                              if again else SendResult(Outcome.DELIVERED, status=result.status))
            elif result.outcome in (Outcome.DELIVERED, Outcome.ABORT) and result.failed_indices:
                if index in result.failed_indices:
                    out[index] = SendResult(Outcome.ABORT, result.message or "rejected by the destination",
                                            result.status)
                else:
                    out[index] = SendResult(Outcome.DELIVERED, status=result.status)
            else:
                out[index] = result
    return out
