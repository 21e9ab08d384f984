"""When to try again: exponential backoff with a cap and jitter, `Retry-After` honoured; a job gives up only
when BOTH its attempt limit and its time window are spent."""

import os
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 1.0
    cap_s: float = 600.0
    max_attempts: int = 10
    window_s: float = 86_400.0

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        def num(name: str, default: float) -> float:
            value = os.environ.get(name)
            return float(value) if value else default

        return cls(base_s=num("KAON_RETRY_BASE_SECONDS", 1.0), cap_s=num("KAON_RETRY_CAP_SECONDS", 600.0),
                   max_attempts=int(num("KAON_RETRY_MAX_ATTEMPTS", 10)),
                   window_s=num("KAON_RETRY_WINDOW_SECONDS", 86_400.0))

    def delay_s(self, attempt: int, retry_after_s: float | None, rand: Callable[[], float] = random.random) -> float:
        """Seconds before attempt `attempt + 1` (attempt counts from 1): full backoff in [50%, 100%]."""
        # Fix: bound the exponent; past ~1024 attempts (small cap, long window) 2**n overflowed a float.
        backoff: float = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 64)) * (0.5 + 0.5 * rand())
        return max(backoff, retry_after_s or 0.0)

    def exhausted(self, attempts: int, first_attempt_ms: int, now_ms: int) -> bool:
        return attempts >= self.max_attempts and (now_ms - first_attempt_ms) >= self.window_s * 1000
