"""Per-input request rate limits: a token bucket with one second of burst."""

import math
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()

    def take(self) -> float:
        """0.0 when a request may pass, else the seconds until one may."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """Buckets per input id; a rate of None means unlimited."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._clock = clock

    def check(self, input_id: str, rate: float | None) -> int:
        """0 when allowed, else the whole seconds to put in `Retry-After`."""
        if rate is None or rate <= 0:
            return 0
        bucket = self._buckets.get(input_id)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[input_id] = TokenBucket(rate, self._clock)
        wait = bucket.take()
        return 0 if wait == 0.0 else max(1, math.ceil(wait))
