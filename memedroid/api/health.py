"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response

from memedroid import metrics
from memedroid.api import services
from memedroid.api.limits import exempt
from memedroid.errors import ServiceUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@exempt
def healthz() -> dict[str, str]:
    """The process is alive and serving requests."""
    return {"status": "ok"}


@bp.get("/readyz")
@exempt
def readyz() -> dict[str, str]:
    """The database answers and the media pipeline makes progress; otherwise a 503 problem."""
    services().db.ping()
    problem = services().publishing.pipeline_problem()
    if problem is not None:
        raise ServiceUnavailable(f"the media pipeline is stalled: {problem}", retry_after=10)
    return {"status": "ready"}


@bp.get("/metrics")
@exempt
def prometheus() -> Response:
    """Prometheus text format, summed over every process; the gauges are read now."""
    found = services()
    publishing = found.publishing
    metrics.DEPENDENCY_UP.labels("redis").set(found.feeds.cache.call("ping", default=False) is True)
    metrics.DEPENDENCY_UP.labels("storage").set(publishing.storage.writable())
    backlog = publishing.backlog()
    metrics.DEPENDENCY_UP.labels("postgres").set(backlog is not None)
    if backlog is not None:
        metrics.BACKLOG.set(backlog)
    depth = publishing.queue_depth()
    if depth is not None:
        metrics.QUEUE_DEPTH.set(depth)
        metrics.DEPENDENCY_UP.labels("pipeline").set(publishing.pipeline_problem() is None)
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
