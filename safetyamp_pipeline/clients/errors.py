"""Typed failures of the API clients.

Every HTTP failure reaches the caller as one of these exceptions: nothing is turned into an empty
result. Texts name the service, the method and the route (never a query string, a token or a
secret) so that they can go into logs, Dagster metadata and the sync ledger as they are.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def url_without_query(url: str | None) -> str | None:
    """The URL with its query and fragment removed (they may carry cursors or tokens)."""
    if not url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class ApiError(Exception):
    """An API call failed. `status` is the HTTP status (None when no answer came back)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.url = url_without_query(url)


class ValidationRejected(ApiError):
    """HTTP 422: the server refused the record. `errors` maps field -> messages."""

    def __init__(self, message: str, *, errors: dict[str, list[str]], **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.errors = errors


class Unauthorized(ApiError):
    """HTTP 401: the token is missing, wrong or expired."""


class Forbidden(ApiError):
    """HTTP 403: the token is valid but lacks the permission (scope, licence, tenant)."""


class NotFound(ApiError):
    """HTTP 404: the route or the record does not exist."""


class RetriesExhausted(ApiError):
    """Retryable failures (5xx, 429, lost connections) kept happening until the retry budget
    (`max_retries` attempts or `max_total_wait` seconds of waiting) ran out."""

    def __init__(self, message: str, *, attempts: int, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.attempts = attempts


class RateLimited(RetriesExhausted):
    """The server kept answering 429. `retry_after` is its last suggested wait in seconds
    (None when it gave none): a scheduler can retry the whole step after that long."""

    def __init__(self, message: str, *, retry_after: float | None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AmbiguousWrite(ApiError):
    """A non-idempotent write (POST) failed after the request may have reached the server
    (connection lost or read timeout after sending, or a 5xx other than 503).

    The record may or may not have been created. The client does NOT retry it, because a retry
    could create a duplicate: the caller must re-read the collection (find the record by its
    natural key) before deciding to send the create again.
    """


class MalformedResponse(ApiError):
    """The server answered 2xx but the body is not what the API returns (HTML, truncated JSON,
    missing `data`, wrong type, pagination that does not advance)."""


class MalformedWriteResponse(MalformedResponse, AmbiguousWrite):
    """A write was answered 2xx with an unreadable body: it most likely happened, but its result
    is unknown. Caught as MalformedResponse and as AmbiguousWrite (re-read before retrying)."""


class TokenError(ApiError):
    """No access token could be obtained (OAuth client-credentials flow)."""


class ConfigError(Exception):
    """A required setting or secret is missing or invalid. Names it, never its value."""
