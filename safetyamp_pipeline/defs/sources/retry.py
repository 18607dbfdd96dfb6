"""The retry policy of the source reads (and only of them).

A source read is idempotent: a Vista deadlock or a Graph/Samsara 5xx that outlived the client's own
retries is worth another attempt a little later. Sinks never get a policy: a sink that failed
half-way may have written, and a blind re-run is not how writes are repaired (the next run plans
again from the mirror and the ledger). Desired assets are pure functions; retrying them repeats the
same error.

``SAFETYAMP_SOURCE_MAX_RETRIES`` (default 3) and ``SAFETYAMP_SOURCE_RETRY_DELAY_SECONDS``
(default 10; doubled each attempt, ±50 % jitter so parallel runs do not retry in step) tune it.
"""

from __future__ import annotations

import os

import dagster as dg

DEFAULT_MAX_RETRIES = 3
DEFAULT_DELAY_SECONDS = 10.0


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"environment variable {name} must not be negative, got {raw!r}")
    return value


def source_retry_policy() -> dg.RetryPolicy | None:
    """None when retries are turned off (0): a policy of zero retries would only rename the
    step's error to "Exceeded max_retries of 0"."""
    max_retries = int(_number("SAFETYAMP_SOURCE_MAX_RETRIES", DEFAULT_MAX_RETRIES))
    if max_retries == 0:
        return None
    return dg.RetryPolicy(
        max_retries=max_retries,
        delay=_number("SAFETYAMP_SOURCE_RETRY_DELAY_SECONDS", DEFAULT_DELAY_SECONDS),
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


SOURCE_RETRY = source_retry_policy()
