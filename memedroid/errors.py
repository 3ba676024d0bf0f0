"""The MemeDroid error hierarchy. Each class carries the HTTP status a client sees for it."""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """The configuration cannot work; the process refuses to start with this message."""


class MemeDroidError(Exception):
    """Base of every error a client may be told about. `detail` is safe to show."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class BadRequest(MemeDroidError):
    status = 400
    title = "Bad Request"


class ValidationError(BadRequest):
    """The body or query was well-formed but some fields are invalid; `errors` names them."""

    title = "Validation Failed"

    def __init__(self, errors: dict[str, str]) -> None:
        fields = ", ".join(sorted(errors))
        super().__init__(
            f"invalid field{'s' if len(errors) > 1 else ''}: {fields}",
            errors=[{"field": name, "message": message} for name, message in sorted(errors.items())],
        )
        self.errors = errors


class Unauthorized(MemeDroidError):
    status = 401
    title = "Unauthorized"


class Forbidden(MemeDroidError):
    status = 403
    title = "Forbidden"


class NotFound(MemeDroidError):
    status = 404
    title = "Not Found"


class RequestTimeout(MemeDroidError):
    status = 408
    title = "Request Timeout"


class Conflict(MemeDroidError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(MemeDroidError):
    status = 413
    title = "Payload Too Large"


class UnsupportedMediaType(MemeDroidError):
    status = 415
    title = "Unsupported Media Type"


class Unprocessable(MemeDroidError):
    status = 422
    title = "Unprocessable Content"


class InsufficientStorage(MemeDroidError):
    status = 507
    title = "Insufficient Storage"


class RetryLater(MemeDroidError):
    """An error the client should retry after `retry_after` seconds (sent as Retry-After)."""

    def __init__(self, detail: str | None = None, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class TooManyRequests(RetryLater):
    status = 429
    title = "Too Many Requests"


class ServiceUnavailable(RetryLater):
    """A dependency is down or the system is saturated; the client should retry later."""

    status = 503
    title = "Service Unavailable"


class DatabaseBusy(ServiceUnavailable):
    """A statement ran past DB_STATEMENT_TIMEOUT or waited past DB_LOCK_TIMEOUT for a lock."""


class ClockSkewed(ServiceUnavailable):
    """This node's clock is too far off the database's to act on (MAX_CLOCK_SKEW)."""
