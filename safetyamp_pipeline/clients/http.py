"""Shared HTTP plumbing of the API clients: one retry loop with typed errors and statistics.

Retry rules (the same for SafetyAmp, Samsara and Graph):

* every attempt first takes a token from the client's `RateLimiter` (when it has one);
* 429: wait `Retry-After` (seconds, fractional allowed, or an HTTP date), else exponential
  backoff with full jitter, then retry;
* 5xx and lost connections / timeouts: exponential backoff with jitter, then retry;
* any other 4xx: never retried; 401/403/404/422 become their own exception types;
* at most `max_retries` retries, and at most `max_total_wait` seconds of retry waiting per call
  (a wait that would pass the cap is not started: the call fails at once with `RetriesExhausted`,
  or `RateLimited` when the last answer was a 429);
* non-idempotent calls (POST) are retried only when the request certainly did not take effect:
  the connection could not be opened, or the answer was 429 or 503. Any other failure after
  sending raises `AmbiguousWrite` (see its docstring): the caller re-reads before retrying.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from safetyamp_pipeline.clients.errors import (
    AmbiguousWrite,
    ApiError,
    Forbidden,
    MalformedResponse,
    MalformedWriteResponse,
    NotFound,
    RateLimited,
    RetriesExhausted,
    Unauthorized,
    ValidationRejected,
)
from safetyamp_pipeline.clients.rate_limit import RateLimiter

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDACTED = "[redacted]"
_BODY_EXCERPT_CHARS = 300


class PinnedCASession(requests.Session):
    """A Session whose own ``verify`` (a CA bundle path) is honoured.

    Plain ``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` from the environment
    override ``Session.verify`` when a request does not pass ``verify=`` itself — and MSAL never
    does. A pinned bundle (the sandbox's own CA) must win over the machine-wide one.

    ``timeout`` applies to requests that pass none: MSAL ignores its own ``timeout`` setting when
    it is handed an ``http_client``, and a token request must not hang forever either.
    """

    def __init__(self, timeout: float | tuple[float, float] | None = None) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        if kwargs.get("timeout") is None and len(args) < 7:  # args: params, data, headers, cookies, files, auth, timeout
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


class EnvironmentOnceSession(requests.Session):
    """A session that reads the proxy and CA-bundle environment once per origin, not per request.

    ``requests`` re-reads the environment (``*_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``) on every
    request, ~0.1 ms each: about 2 s of a 20,000-write first load. A client lives for one run and
    the environment does not change during it, so the merged settings are kept per origin.
    """

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        if key not in self._merged:
            self._merged[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        return dict(self._merged[key])


@dataclass
class RequestStats:
    """What a client did; read by the benchmark and by asset metadata."""

    requests_by_route: Counter[str] = field(default_factory=Counter)
    total_requests: int = 0
    rate_limited_responses: int = 0
    retries: int = 0
    limiter_wait_seconds: float = 0.0
    retry_after_wait_seconds: float = 0.0
    backoff_wait_seconds: float = 0.0
    planned_writes_by_route: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_requests": self.total_requests,
            "requests_by_route": dict(sorted(self.requests_by_route.items())),
            "rate_limited_responses": self.rate_limited_responses,
            "retries": self.retries,
            "limiter_wait_seconds": round(self.limiter_wait_seconds, 3),
            "retry_after_wait_seconds": round(self.retry_after_wait_seconds, 3),
            "backoff_wait_seconds": round(self.backoff_wait_seconds, 3),
            "planned_writes_by_route": dict(sorted(self.planned_writes_by_route.items())),
        }


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    max_total_wait: float = 300.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0


class Redactor:
    """Replaces known secret values in any text before it reaches a log line or an exception."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first so that a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a `Retry-After` header: a (possibly fractional) number of seconds or
    an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, policy: RetryPolicy, rng: Callable[[], float]) -> float:
    """Exponential backoff with full jitter for retry number `attempt` (1-based)."""
    ceiling = min(policy.backoff_cap, policy.backoff_base * (2 ** (attempt - 1)))
    return ceiling * (0.5 + 0.5 * rng())


def failed_before_sending(exc: requests.RequestException) -> bool:
    """True when the connection could not even be opened, so the server never saw the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
        return isinstance(inner, (NewConnectionError, ConnectTimeoutError))
    return False


def error_messages(body: Any) -> dict[str, list[str]]:
    """The `errors` of a Laravel-style 422 body as field -> list of messages."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {}
    result: dict[str, list[str]] = {}
    for name, messages in errors.items():
        if isinstance(messages, list):
            result[str(name)] = [str(m) for m in messages]
        else:
            result[str(name)] = [str(messages)]
    return result


class HttpTransport:
    """Sends one logical request with the retry rules above; returns the 2xx `Response`."""

    def __init__(
        self,
        *,
        service: str,
        session: requests.Session,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        bucket: RateLimiter | None,
        redact: Redactor,
        logger: logging.Logger,
        stats: RequestStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.service = service
        self.session = session
        self.timeout = timeout
        self.policy = policy
        self.bucket = bucket
        self.redact = redact
        self.log = logger
        self.stats = stats if stats is not None else RequestStats()
        self._sleep = sleep
        self._rng = rng

    def describe(self, method: str, route: str) -> str:
        return f"{self.service} {method} {route}"

    def request(
        self,
        method: str,
        url: str,
        *,
        route: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        what = self.describe(method, route)
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            if self.bucket is not None:
                limiter_wait = self.bucket.acquire()
                if limiter_wait > 0:
                    self.stats.limiter_wait_seconds += limiter_wait
                    self.log.debug("%s: waited %.2f s for the client rate limiter", what, limiter_wait)
            self.stats.total_requests += 1
            self.stats.requests_by_route[f"{method} {route}"] += 1
            try:
                response = self.session.request(
                    method, url, params=params, json=json_body, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                self._mark_answered()
                reason = self.redact(f"{type(exc).__name__}: {exc}")
                if not idempotent and not failed_before_sending(exc):
                    raise AmbiguousWrite(
                        f"{what}: the connection failed after the request was sent ({reason}); "
                        "the write may have happened - re-read before retrying",
                        method=method,
                        url=url,
                    ) from None
                delay = backoff_delay(attempt, self.policy, self._rng)
                waited = self._wait_or_fail(
                    what, method, url, attempt, waited, delay, reason, status=None, retry_after=None
                )
                self.stats.backoff_wait_seconds += delay
                continue
            self._mark_answered()
            status = response.status_code
            if status < 300:
                return response
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if status == 429:
                    self.stats.rate_limited_responses += 1
                if not idempotent and status not in (429, 503):
                    raise AmbiguousWrite(
                        f"{what}: HTTP {status} after the request was sent "
                        f"({self._excerpt(response)}); the write may have happened - "
                        "re-read before retrying",
                        status=status,
                        method=method,
                        url=url,
                    )
                if retry_after is not None:
                    delay, source = retry_after, "Retry-After"
                else:
                    delay, source = backoff_delay(attempt, self.policy, self._rng), "backoff"
                reason = f"HTTP {status}"
                waited = self._wait_or_fail(
                    what, method, url, attempt, waited, delay, reason, status=status,
                    retry_after=retry_after, source=source,
                )
                if source == "Retry-After":
                    self.stats.retry_after_wait_seconds += delay
                else:
                    self.stats.backoff_wait_seconds += delay
                continue
            raise self._client_error(response, what, method, url)

    def _mark_answered(self) -> None:
        if self.bucket is not None:
            self.bucket.mark_answered()

    def _wait_or_fail(
        self,
        what: str,
        method: str,
        url: str,
        attempt: int,
        waited: float,
        delay: float,
        reason: str,
        *,
        status: int | None,
        retry_after: float | None,
        source: str = "backoff",
    ) -> float:
        """Sleep `delay` before the next attempt, or raise when the retry budget is spent."""
        retries_done = attempt - 1
        out_of_retries = retries_done >= self.policy.max_retries
        out_of_time = waited + delay > self.policy.max_total_wait
        if out_of_retries or out_of_time:
            budget = (
                f"{self.policy.max_retries} retries"
                if out_of_retries
                else f"the {self.policy.max_total_wait:g} s wait budget "
                f"(waited {waited:.1f} s, next wait {delay:.1f} s)"
            )
            message = f"{what}: gave up after {attempt} attempts, {budget} used up; last failure: {reason}"
            if status == 429:
                raise RateLimited(
                    message, retry_after=retry_after, attempts=attempt,
                    status=status, method=method, url=url,
                )
            raise RetriesExhausted(message, attempts=attempt, status=status, method=method, url=url)
        self.stats.retries += 1
        self.log.warning(
            "%s: %s; waiting %.2f s (%s) before retry %d/%d",
            what, reason, delay, source, attempt, self.policy.max_retries,
        )
        if delay > 0:
            self._sleep(delay)
        return waited + delay

    def _excerpt(self, response: requests.Response) -> str:
        text = " ".join(response.text[:_BODY_EXCERPT_CHARS].split())
        return self.redact(f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}")

    def _client_error(self, response: requests.Response, what: str, method: str, url: str) -> ApiError:
        status = response.status_code
        detail = self._excerpt(response)
        kwargs: dict[str, Any] = {"status": status, "method": method, "url": url}
        if status == 422:
            try:
                body = response.json()
            except ValueError:
                body = None
            errors = error_messages(body)
            summary = "; ".join(f"{name}: {' / '.join(msgs)}" for name, msgs in errors.items())
            return ValidationRejected(
                self.redact(f"{what} rejected (HTTP 422): {summary or detail}"), errors=errors, **kwargs
            )
        if status == 401:
            return Unauthorized(f"{what}: unauthorized, the token was refused ({detail})", **kwargs)
        if status == 403:
            return Forbidden(f"{what}: forbidden, the token lacks a permission ({detail})", **kwargs)
        if status == 404:
            return NotFound(f"{what}: not found ({detail})", **kwargs)
        return ApiError(f"{what}: failed ({detail})", **kwargs)

    def json_of(
        self, response: requests.Response, method: str, route: str, *, write: bool = False
    ) -> Any:
        """The decoded JSON body, or MalformedResponse naming the route (MalformedWriteResponse
        for a write, whose effect is then unknown)."""
        try:
            return json.loads(response.content)
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            error = MalformedWriteResponse if write else MalformedResponse
            raise error(
                f"{self.describe(method, route)}: the body is not valid JSON "
                f"({kind}, {len(response.content)} bytes)",
                status=response.status_code,
                method=method,
                url=response.url,
            ) from None
