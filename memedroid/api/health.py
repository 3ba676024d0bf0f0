"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint

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
