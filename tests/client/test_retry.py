"""The pure retry policy: classification of answers, Retry-After parsing and backoff delays."""

import pytest

from kaon.client.retry import BACKOFF_CAP, backoff, classify, parse_retry_after


@pytest.mark.parametrize(("status", "action"), [
    (202, "delivered"), (200, "delivered"), (408, "retry"), (429, "retry"), (500, "retry"),
    (503, "retry"), (400, "abort"), (401, "abort"), (403, "abort"), (413, "abort"),
])
def test_classify(status: int, action: str) -> None:
    assert classify(status, {}).action == action


def test_retry_after_is_read_on_retryable_answers() -> None:
    assert classify(429, {"retry-after": "7"}).retry_after == 7.0
    assert classify(503, {}).retry_after is None


@pytest.mark.parametrize(("header", "seconds"), [
    ("3", 3.0), (" 0 ", 0.0), ("-5", 0.0), ("soon", None), (None, None),
    ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0),
])
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=lambda: 60.0) == seconds


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    lowest = [backoff(n, None, lambda: 0.0) for n in range(10)]
    highest = [backoff(n, None, lambda: 1.0) for n in range(10)]
    assert lowest[:4] == [0.25, 0.5, 1.0, 2.0]
    assert highest[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(highest) == BACKOFF_CAP


def test_retry_after_overrides_backoff() -> None:
    assert backoff(4, 2.0, lambda: 1.0) == 2.0
