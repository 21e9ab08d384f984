"""Wait for a condition with a deadline; fail with what was last seen (never sleep-and-hope)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> T:
    """Call `probe` until it returns a truthy value (returned) or raises nothing past the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except AssertionError as error:
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s; last seen: {last!r}")
        time.sleep(interval)
