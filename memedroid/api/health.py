"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response

from memedroid import metrics
from memedroid.api import services
from memedroid.api.limits import exempt

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@exempt
def healthz() -> dict[str, str]:
    """The process is alive and serving requests."""
    return {"status": "ok"}


@bp.get("/readyz")
@exempt
def readyz() -> dict[str, str]:
    """The database answers; otherwise a 503 problem."""
    services().db.ping()
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
    if publishing.job_queue is not None:
        metrics.QUEUE_DEPTH.set(publishing.job_queue.qsize())
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
