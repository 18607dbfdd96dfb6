"""Progress of a sink's writes: a log line at least every 30 s or every 5 % of the planned writes
(done/planned, rate, ETA), and the same updates to in-process listeners (``make sync``'s bar).

The sink engine calls a :class:`ProgressReporter` with ``(done, planned)`` as it works. The ETA
uses the slower of the observed rate and the client's rate limit (one request per write), so an
initial load at 60 requests/min shows its real hours from the first line.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

EVERY_SECONDS = 30.0
EVERY_SHARE = 0.05


@dataclass(frozen=True)
class ProgressUpdate:
    label: str
    done: int
    planned: int
    rate_per_second: float | None  # observed; None before the first write
    eta_seconds: float | None
    finished: bool

    def line(self) -> str:
        share = f" ({self.done / self.planned:.0%})" if self.planned else ""
        rate = f", {self.rate_per_second:.2f} writes/s" if self.rate_per_second else ""
        eta = f", ETA {format_duration(self.eta_seconds)}" if self.eta_seconds is not None and not self.finished else ""
        state = "done: " if self.finished else ""
        return f"{self.label}: {state}{self.done}/{self.planned} writes{share}{rate}{eta}"


Listener = Callable[[ProgressUpdate], None]
_listeners: list[Listener] = []


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send every update of this process's reporters to ``listener`` while the block runs."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


class ProgressReporter:
    """Call with ``(done, planned)``; logs when 30 s have passed or 5 % more is done since the last
    line, and always at the start (when there is work) and at the end."""

    def __init__(
        self,
        label: str,
        log: Any,
        *,
        limit_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        every_seconds: float = EVERY_SECONDS,
        every_share: float = EVERY_SHARE,
    ) -> None:
        self.label = label
        self.log = log
        self.limit_per_second = limit_per_second
        self.clock = clock
        self.every_seconds = every_seconds
        self.every_share = every_share
        self._started: float | None = None
        self._last_time = 0.0
        self._last_done = -1
        self._finished = False

    def __call__(self, done: int, planned: int) -> None:
        now = self.clock()
        if self._started is None:
            self._started = now
        if self._finished or planned <= 0:
            return
        update = self._update(done, planned, now)
        for listener in list(_listeners):
            listener(update)
        step = max(1, int(planned * self.every_share))
        due = (
            self._last_done < 0
            or update.finished
            or done - self._last_done >= step
            or now - self._last_time >= self.every_seconds
        )
        if due and done != self._last_done:
            self.log.info("%s", update.line())
            self._last_time, self._last_done = now, done
        self._finished = update.finished

    def _update(self, done: int, planned: int, now: float) -> ProgressUpdate:
        elapsed = now - (self._started or now)
        rate = done / elapsed if done and elapsed > 0 else None
        speeds = [s for s in (rate, self.limit_per_second) if s]
        remaining = max(planned - done, 0)
        eta = remaining / min(speeds) if speeds else None
        return ProgressUpdate(self.label, done, planned, rate, eta, finished=done >= planned)
