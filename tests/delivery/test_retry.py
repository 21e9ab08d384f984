"""The retry policy: capped exponential backoff with jitter, Retry-After honoured, give up on both limits."""

import pytest

from kaon.delivery.retry import RetryPolicy

POLICY = RetryPolicy(base_s=1.0, cap_s=60.0, max_attempts=5, window_s=3_600.0)



def test_delays_double_up_to_the_cap_without_jitter_at_rand_one() -> None:
    delays = [POLICY.delay_s(attempt, None, rand=lambda: 1.0) for attempt in range(1, 10)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_jitter_spans_half_to_all_of_the_backoff() -> None:
    for attempt, full in [(1, 1.0), (3, 4.0), (12, 60.0)]:
        assert POLICY.delay_s(attempt, None, rand=lambda: 0.0) == full * 0.5
        assert POLICY.delay_s(attempt, None, rand=lambda: 0.5) == full * 0.75
        assert POLICY.delay_s(attempt, None, rand=lambda: 1.0) == full


def test_the_default_jitter_stays_within_bounds() -> None:
    for attempt in range(1, 12):
        full = min(60.0, 2.0 ** (attempt - 1))
        for _ in range(50):
            assert full * 0.5 <= POLICY.delay_s(attempt, None) <= full


def test_retry_after_wins_when_larger() -> None:
    assert POLICY.delay_s(1, 30.0, rand=lambda: 1.0) == 30.0
    assert POLICY.delay_s(8, 30.0, rand=lambda: 1.0) == 60.0  # the backoff is larger
    assert POLICY.delay_s(2, 0.0, rand=lambda: 0.0) == 1.0
    assert POLICY.delay_s(1, 3_000.0, rand=lambda: 0.0) == 3_000.0  # the vendor's word beats our cap


def test_a_long_retry_window_does_not_overflow_the_backoff() -> None:
    # A small cap with a long window allows thousands of attempts; the delay must stay at the cap.
    policy = RetryPolicy(base_s=0.5, cap_s=1.0, max_attempts=10, window_s=86_400.0)
    assert policy.delay_s(5_000, None, rand=lambda: 1.0) == 1.0


@pytest.mark.parametrize(("attempts", "elapsed_s", "exhausted"), [
    (1, 0, False),
    (4, 3_600, False),  # the window is spent, attempts are not
    (5, 3_599.999, False),  # attempts are spent, the window is not
    (50, 3_599, False),
    (5, 3_600, True),  # both spent
    (6, 7_200, True),
])
def test_exhausted_only_when_both_attempts_and_window_are_spent(attempts: int, elapsed_s: float,
                                                                exhausted: bool) -> None:
    first = 1_800_000_000_000
    assert POLICY.exhausted(attempts, first, first + int(elapsed_s * 1000)) is exhausted


def test_from_env_reads_the_documented_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAON_RETRY_BASE_SECONDS", "0.25")
    monkeypatch.setenv("KAON_RETRY_CAP_SECONDS", "5")
    monkeypatch.setenv("KAON_RETRY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("KAON_RETRY_WINDOW_SECONDS", "60")
    assert RetryPolicy.from_env() == RetryPolicy(base_s=0.25, cap_s=5.0, max_attempts=3, window_s=60.0)
    monkeypatch.delenv("KAON_RETRY_CAP_SECONDS")
    assert RetryPolicy.from_env().cap_s == 600.0
