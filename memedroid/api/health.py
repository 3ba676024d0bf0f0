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
    """The database answers and the media pipeline makes progress; otherwise a 503 problem."""
    services().health.check_ready()
    return {"status": "ready"}


@bp.get("/metrics")
@exempt
def prometheus() -> Response:
    """Prometheus text format, summed over every process; the gauges are read now."""
    services().health.record_gauges()
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
