"""Client-side rate limiting so that a sync never causes a 429.

`TokenBucket(rate, per_seconds)` holds `rate` tokens. A request spends one token and that token
comes back `per_seconds` after it was spent. Hence no window of `per_seconds` ever contains more
than `rate` requests, which is what every usual server-side limiter checks (a Laravel fixed
window that starts at the first hit, a sliding window, or a token bucket with capacity `rate`).
A continuously refilling bucket with capacity `rate` would not be safe against the first two: it
lets request `rate + 1` through one refill interval after a full burst.

Latency: the server counts a request when it arrives, which is later than `acquire()`. A client
calls `mark_answered()` once the answer came back, which restamps the token with that (later)
time; the next use of the token is then at least `per_seconds` after the server saw the request.

`TokenBucket` is one process's budget. Runs are separate processes (pods), so two runs in one
window would each spend a full budget: `store.rate_budget.SharedRateBudget` keeps the same
tokens in the sync store instead, one budget per API token for every process. Both satisfy
`RateLimiter`, the interface `clients.http.HttpTransport` uses.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class RateLimiter(Protocol):
    """What a client needs from a limiter: take a token before each attempt, report the answer."""

    waited_total: float

    def acquire(self) -> float:
        """Take a token, sleeping until one is free. Returns the seconds waited."""
        ...

    def mark_answered(self) -> None:
        """The request sent after the last `acquire()` (on this thread) has been answered."""
        ...


class TokenBucket:
    def __init__(
        self,
        rate: int,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 1:
            raise ValueError(f"rate must be at least 1, got {rate}")
        if per_seconds <= 0:
            raise ValueError(f"per_seconds must be positive, got {per_seconds}")
        self.rate = int(rate)
        self.per_seconds = float(per_seconds)
        self._clock = clock
        self._sleep = sleep
        self._spent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.waited_total = 0.0

    def _free_expired(self, now: float) -> None:
        while self._spent and now - self._spent[0] >= self.per_seconds:
            self._spent.popleft()

    def acquire(self) -> float:
        """Take a token, sleeping until one is back if none is left. Returns seconds waited."""
        waited = 0.0
        with self._lock:
            now = self._clock()
            self._free_expired(now)
            if len(self._spent) >= self.rate:
                waited = self._spent[0] + self.per_seconds - now
                self._sleep(waited)
                # The oldest token is back now; dropping it explicitly (rather than comparing
                # clock readings again) cannot loop on a float rounding residue.
                self._spent.popleft()
                now = max(self._clock(), self._spent[-1] if self._spent else now)
            self._spent.append(now)
            self.waited_total += waited
        return waited

    def mark_answered(self) -> None:
        """Restamp the most recently spent token with the current time (see module docstring)."""
        with self._lock:
            if self._spent:
                self._spent[-1] = max(self._spent[-1], self._clock())

    @property
    def available(self) -> int:
        """Tokens that can be taken right now without waiting."""
        with self._lock:
            self._free_expired(self._clock())
            return self.rate - len(self._spent)
