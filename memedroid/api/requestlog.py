"""Request ids, the access log (one JSON line per request, with the id on every line) and the
request metrics.

Every request pays for these, so they are written for it: the request is unwrapped once per
hook (no proxy lookup per attribute), the id comes straight from the WSGI environ, the access
line is written without a LogRecord (`logs.Line`), and the metric is one histogram
observation whose series is resolved once per route.
"""

from __future__ import annotations

import time

from flask import Flask, Response

from memedroid import metrics
from memedroid.api import current
from memedroid.logs import Line, request_id_var, sane_request_id

access_line = Line("memedroid.access", "request")

HEADER = "X-Request-ID"


def _begin() -> None:
    request = current()
    request.started = time.perf_counter()
    request.request_id = sane_request_id(request.environ.get("HTTP_X_REQUEST_ID"))
    request.request_id_token = request_id_var.set(request.request_id)


def _finish(response: Response) -> Response:
    request = current()
    seconds = time.perf_counter() - request.started if request.started else 0.0
    response.headers[HEADER] = request.request_id
    # The route template, not the path: /api/v1/posts/<int:post_id> is one series, not one per post.
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    record(endpoint, request.method, request.path, response.status_code, seconds, request.user_id)
    return response


def record(endpoint: str, method: str, path: str, status: int, seconds: float, user_id: int | None = None) -> None:
    """The access line and the metric of an answered request (`endpoint`: its route's rule)."""
    metrics.observe_request(endpoint, method, status, seconds)
    access_line.info(
        event="request",
        method=method,
        path=path,
        status=status,
        duration_ms=round(seconds * 1000, 2),
        user_id=user_id,
    )


def _teardown(_exc: BaseException | None) -> None:
    request = current()
    if request.request_id_token is not None:
        request_id_var.reset(request.request_id_token)
        request.request_id_token = None


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_teardown)
