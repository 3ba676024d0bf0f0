"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response

from memedroid import metrics
from memedroid.api import current, services
from memedroid.api.limits import exempt
from memedroid.errors import NotFound

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
    services().health.check_ready()
    return {"status": "ready"}


@bp.get("/metrics")
@exempt
def prometheus() -> Response:
    """Prometheus text format, summed over every process; the gauges are read now. Only for
    the addresses METRICS_ALLOW names (a 404 to anyone else: it is not there for the public)."""
    if not services().settings.metrics_allowed(current().remote_addr or ""):
        raise NotFound("no such resource")
    services().health.record_gauges()
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
