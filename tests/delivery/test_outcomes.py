"""Turning a destination's request results into one result per event (per job)."""

from kaon.delivery.outcomes import SKIPPED, WAITING, per_event
from kaon.destinations.base import HttpRequest
from kaon.destinations.outcome import Outcome, SendResult


def request(*indices: int) -> HttpRequest:
    return HttpRequest("POST", "http://vendor.test/", {}, b"{}", indices)


def outcomes(results: list[SendResult]) -> list[Outcome]:
    return [r.outcome for r in results]


def test_each_event_takes_its_requests_outcome() -> None:
    ok = SendResult(Outcome.DELIVERED, status=200)
    later = SendResult(Outcome.RETRY, "HTTP 503", 503, 7.0)
    refused = SendResult(Outcome.ABORT, "HTTP 400: bad", 400)
    out = per_event(4, [request(0, 1), request(2), request(3)], [ok, later, refused])
    assert out == [ok, ok, later, refused]
    assert out[2].retry_after_s == 7.0 and out[3].message == "HTTP 400: bad"


def test_events_in_no_request_are_skipped() -> None:
    ok = SendResult(Outcome.DELIVERED, status=200)
    out = per_event(4, [request(1), request(3)], [ok, ok])
    assert out == [SKIPPED, ok, SKIPPED, ok]
    assert SKIPPED.outcome == Outcome.SKIP
    assert per_event(2, [], []) == [SKIPPED, SKIPPED]


def test_retry_part_retries_only_the_named_events_and_delivers_the_rest() -> None:
    # Indices name events as the request's `event_indices` do (positions in the list given to `transform`),
    # not positions within the request.
    part = SendResult(Outcome.RETRY_PART, "2 of 4 throttled", 429, 3.0, retry_indices=(2, 0))
    out = per_event(8, [request(5, 2, 7, 0)], [part])
    assert outcomes([out[5], out[2], out[7], out[0]]) == [
        Outcome.DELIVERED, Outcome.RETRY, Outcome.DELIVERED, Outcome.RETRY]
    assert (out[2].message, out[2].status, out[2].retry_after_s) == ("2 of 4 throttled", 429, 3.0)
    assert out[5].status == 429 and out[5].message == ""
    assert all(out[i] is SKIPPED for i in (1, 3, 4, 6))


def test_failed_indices_abort_only_those_events() -> None:
    some_rejected = SendResult(Outcome.DELIVERED, "2 rejected", 200, failed_indices=(0, 1))
    out = per_event(3, [request(2, 1, 0)], [some_rejected])
    assert outcomes(out) == [Outcome.ABORT, Outcome.ABORT, Outcome.DELIVERED]
    assert out[0].message == "2 rejected" and out[0].status == 200
    unnamed = per_event(2, [request(0, 1)], [SendResult(Outcome.DELIVERED, status=200, failed_indices=(1,))])
    assert unnamed[1].message == "rejected by the destination"
    abort_some = per_event(2, [request(0, 1)], [SendResult(Outcome.ABORT, "bad", 400, failed_indices=(1,))])
    assert outcomes(abort_some) == [Outcome.DELIVERED, Outcome.ABORT]
    # Across several requests each result names its own events.
    two = per_event(4, [request(0, 1), request(2, 3)], [
        SendResult(Outcome.DELIVERED, "x", 200, failed_indices=(1,)),
        SendResult(Outcome.RETRY_PART, "y", 429, retry_indices=(2,))])
    assert outcomes(two) == [Outcome.DELIVERED, Outcome.ABORT, Outcome.RETRY, Outcome.DELIVERED]


def test_waiting_requests_stay_waiting_for_each_of_their_events() -> None:
    ok = SendResult(Outcome.DELIVERED, status=200)
    out = per_event(3, [request(0), request(1, 2)], [ok, WAITING])
    assert out[0] is ok and out[1] is WAITING and out[2] is WAITING  # the queue recognises WAITING by identity
