"""Per-input token buckets, driven by an injected clock (no sleeping)."""

from kaon.collect.ratelimit import RateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_one_second_of_burst_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock)
    assert bucket.take() == 0.0
    assert bucket.take() == 0.0
    assert bucket.take() == 0.5  # one token refills in 1/2 s
    clock.now += 0.5
    assert bucket.take() == 0.0
    assert bucket.take() > 0.0


def test_bucket_refill_is_capped_at_one_second_of_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3.0, clock)
    clock.now += 3600  # a long idle time does not bank an hour of requests
    allowed = 0
    while bucket.take() == 0.0:
        allowed += 1
    assert allowed == 3


def test_slow_rate_still_allows_one_request() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.5, clock)
    assert bucket.take() == 0.0
    assert bucket.take() == 2.0
    clock.now += 2.0
    assert bucket.take() == 0.0


def test_limiter_unlimited_when_rate_is_none_or_zero() -> None:
    limiter = RateLimiter(FakeClock())
    assert all(limiter.check("in_a", None) == 0 for _ in range(1000))
    assert all(limiter.check("in_a", 0) == 0 for _ in range(1000))


def test_limiter_answers_whole_seconds_at_least_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert limiter.check("in_a", 10) == 0
    waits = [limiter.check("in_a", 10) for _ in range(20)]
    refused = [w for w in waits if w]
    assert refused, "a burst past the bucket must be refused"
    assert all(isinstance(w, int) and w >= 1 for w in refused)
    limiter2 = RateLimiter(clock)
    assert limiter2.check("in_b", 0.25) == 0
    assert limiter2.check("in_b", 0.25) == 4  # ceil of 4.0 s


def test_limiter_buckets_are_per_input() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert limiter.check("in_a", 1) == 0
    assert limiter.check("in_a", 1) >= 1
    assert limiter.check("in_b", 1) == 0


def test_limiter_applies_a_changed_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert limiter.check("in_a", 1) == 0
    assert limiter.check("in_a", 1) >= 1
    # The input's limit was raised: the new rate applies at once.
    assert [limiter.check("in_a", 5) for _ in range(5)] == [0] * 5
