"""RFC 9457 problem details: the one place errors become HTTP responses.

MemeDroid errors and HTTP errors become `application/problem+json` with the request id; an
unexpected exception is logged with its traceback and answered with a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from memedroid.errors import MemeDroidError, RetryLater
from memedroid.logs import request_id_var

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """A problem+json response for `status`."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body["request_id"] = request_id_var.get()
    body.update(extra)
    response = current_app.response_class(json.dumps(body), status=status, mimetype=CONTENT_TYPE)
    return response


def from_error(error: MemeDroidError) -> Response:
    response = problem(error.status, error.title, error.detail, **error.extra)
    if isinstance(error, RetryLater):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    response = problem(status, error.name, error.description)
    if status == 405 and error.response is None:
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def from_unexpected(error: Exception) -> Response:
    log.error("unhandled exception", exc_info=error, extra={"event": "unhandled_exception"})
    return problem(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


def init_app(app: Flask) -> None:
    app.register_error_handler(MemeDroidError, from_error)
    app.register_error_handler(HTTPException, from_http_exception)
    app.register_error_handler(Exception, from_unexpected)
