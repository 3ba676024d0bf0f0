"""The health service: readiness, and the gauges `/metrics` reads at scrape time."""

from __future__ import annotations

from memedroid import metrics
from memedroid.cache import Cache
from memedroid.db import Database
from memedroid.errors import ServiceUnavailable
from memedroid.repositories import health, media
from memedroid.storage import Storage
from memedroid.transport import Pipeline


class Health:
    def __init__(self, db: Database, cache: Cache, storage: Storage, pipeline: Pipeline | None) -> None:
        self.db = db
        self.cache = cache
        self.storage = storage
        self.pipeline = pipeline

    def check_ready(self) -> None:
        """Return when the database answers and the media pipeline makes progress (as the
        supervisor judges it); raise `ServiceUnavailable` saying which does not."""
        with self.db.transaction() as conn:
            health.ping(conn)
        problem = self._pipeline_problem()
        if problem is not None:
            raise ServiceUnavailable(f"the media pipeline is stalled: {problem}", retry_after=10)

    def record_gauges(self) -> None:
        """Probe each dependency now and set the gauges (dependency_up, backlog, queue depth)."""
        metrics.DEPENDENCY_UP.labels("redis").set(self.cache.call("ping", default=False) is True)
        metrics.DEPENDENCY_UP.labels("storage").set(self.storage.writable())
        try:
            with self.db.transaction() as conn:
                metrics.BACKLOG.set(media.backlog(conn))
            metrics.DEPENDENCY_UP.labels("postgres").set(1)
        except ServiceUnavailable:
            metrics.DEPENDENCY_UP.labels("postgres").set(0)
        if self.pipeline is not None:
            metrics.QUEUE_DEPTH.set(self.pipeline.jobs.qsize())
            metrics.DEPENDENCY_UP.labels("pipeline").set(self._pipeline_problem() is None)

    def _pipeline_problem(self) -> str | None:
        if self.pipeline is None:
            return None
        return self.pipeline.health.stall.reason or None
