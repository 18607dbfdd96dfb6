"""TokenBucket on a fake clock, and the Retry-After / backoff helpers."""

from __future__ import annotations

import random

import pytest

from safetyamp_pipeline.clients.http import RetryPolicy, backoff_delay, parse_retry_after
from safetyamp_pipeline.clients.rate_limit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def bucket(rate: int, per: float, clock: FakeClock) -> TokenBucket:
    return TokenBucket(rate, per, clock=clock, sleep=clock.sleep)


def test_a_full_burst_passes_at_once_and_the_next_request_waits_for_the_oldest_token() -> None:
    clock = FakeClock()
    limiter = bucket(60, 60.0, clock)
    for _ in range(60):
        assert limiter.acquire() == 0.0
    assert clock.now == 1000.0
    clock.now += 10.0
    assert limiter.acquire() == pytest.approx(50.0)
    assert clock.now == pytest.approx(1060.0)
    assert limiter.waited_total == pytest.approx(50.0)


def test_no_window_of_the_period_ever_holds_more_than_rate_requests() -> None:
    clock = FakeClock()
    limiter = bucket(60, 60.0, clock)
    rng = random.Random(3)
    stamps = []
    for _ in range(300):
        clock.now += rng.choice([0.0, 0.0, 0.1, 0.7, 2.0])  # the caller's own work between calls
        limiter.acquire()
        stamps.append(clock.now)
    for i, start in enumerate(stamps):
        in_window = [t for t in stamps[i:] if t < start + 60.0]
        assert len(in_window) <= 60, f"{len(in_window)} requests in the minute from {start}"
    # 300 requests at 60 per minute need at least 4 full minutes after the first burst.
    assert stamps[-1] - stamps[0] >= 240.0


def test_a_continuously_refilled_burst_would_overrun_a_fixed_window_but_this_bucket_does_not() -> None:
    # Laravel counts 60 hits in a window opened by the first hit: request 61 must wait a full
    # window after the burst, not one refill interval (1 s).
    clock = FakeClock()
    limiter = bucket(60, 60.0, clock)
    for _ in range(60):
        limiter.acquire()
    clock.now += 1.0
    limiter.acquire()
    assert clock.now >= 1060.0


def test_mark_answered_restamps_the_token_with_the_answer_time() -> None:
    clock = FakeClock()
    limiter = bucket(1, 1.0, clock)
    limiter.acquire()
    clock.now += 0.4  # the request took 0.4 s: the server may have seen it that late
    limiter.mark_answered()
    waited = limiter.acquire()
    assert waited == pytest.approx(1.0)
    assert clock.now == pytest.approx(1001.4)


def test_available_counts_tokens_that_came_back() -> None:
    clock = FakeClock()
    limiter = bucket(3, 1.0, clock)
    limiter.acquire()
    limiter.acquire()
    assert limiter.available == 1
    clock.now += 1.0
    assert limiter.available == 3


@pytest.mark.parametrize("rate, per", [(0, 1.0), (5, 0.0), (5, -1.0)])
def test_invalid_settings_are_refused(rate: int, per: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, per)


def test_retry_after_accepts_fractional_seconds_and_http_dates() -> None:
    assert parse_retry_after("0.40235") == pytest.approx(0.40235)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=4.0)
    low = [backoff_delay(n, policy, lambda: 0.0) for n in range(1, 7)]
    high = [backoff_delay(n, policy, lambda: 1.0) for n in range(1, 7)]
    assert high == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert low == [h / 2 for h in high]
