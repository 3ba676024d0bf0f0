"""Request ids, the access log (one JSON line per request, with the id on every line) and the
request metrics."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from memedroid import metrics
from memedroid.logs import request_id_var, sane_request_id

log = logging.getLogger("memedroid.access")

HEADER = "X-Request-ID"


def _begin() -> None:
    g.started = time.perf_counter()
    g.request_id = sane_request_id(request.headers.get(HEADER))
    g.request_id_token = request_id_var.set(g.request_id)


def _finish(response: Response) -> Response:
    response.headers[HEADER] = g.get("request_id", "")
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    # The route template, not the path: /api/v1/posts/<int:post_id> is one series, not one per post.
    labels = (request.url_rule.rule if request.url_rule else "unmatched", request.method, str(response.status_code))
    metrics.REQUESTS.labels(*labels).inc()
    metrics.REQUEST_SECONDS.labels(*labels).observe(seconds)
    log.info(
        "request",
        extra={
            "event": "request",
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "user_id": g.get("user_id"),
        },
    )
    return response


def _teardown(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id_var.reset(token)


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_teardown)
