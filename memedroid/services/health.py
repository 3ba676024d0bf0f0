"""The health service: readiness, the clock check every node makes against the database's, and
the gauges `/metrics` reads at scrape time."""

from __future__ import annotations

import time

from memedroid import metrics
from memedroid.cache import Cache
from memedroid.db import Database
from memedroid.errors import ClockSkewed, ServiceUnavailable
from memedroid.repositories import health, media
from memedroid.settings import Settings
from memedroid.storage import Storage, free_bytes
from memedroid.transport import Pipeline

PROBE_TIMEOUT = 2.0  # seconds a probe waits for its connection


def clock_offset(db: Database) -> float:
    """Seconds this node's clock is ahead of the database's (negative: behind)."""
    asked = time.time()
    with db.transaction() as conn:
        return _offset(asked, health.clock(conn))


def _offset(asked: float, theirs: float) -> float:
    """This node's clock against the database's, read at `theirs` by a round trip begun at
    `asked` (by this node's clock) and ending now: the middle of the trip is their reading's."""
    return (asked + time.time()) / 2 - theirs


def clock_problem(offset: float, settings: Settings) -> str | None:
    """What is wrong with a clock `offset` seconds off the database's, beyond MAX_CLOCK_SKEW."""
    if abs(offset) <= settings.max_clock_skew:
        return None
    way = "ahead of" if offset > 0 else "behind"
    return (
        f"this node's clock is {abs(offset):.0f} s {way} the database's (MAX_CLOCK_SKEW={settings.max_clock_skew:g}): "
        "set its time right (NTP)"
    )


def check_clock(db: Database, settings: Settings) -> None:
    """Raise `ClockSkewed` when this node's clock is off the database's beyond MAX_CLOCK_SKEW:
    the supervisor refuses to start then, and the janitor to act."""
    problem = clock_problem(clock_offset(db), settings)
    if problem is not None:
        raise ClockSkewed(problem, retry_after=60)


def disk_problem(storage: Storage, settings: Settings) -> str | None:
    """Which of this node's disks is full (has less than DISK_RESERVE_BYTES free): the storage
    folder's (uploads, and the workers' scratch) or VAR_DIR's (metrics, the embedded servers)."""
    reserve = settings.disk_reserve_bytes
    for name, free in (("STORAGE_DIR", storage.free_bytes()), ("VAR_DIR", free_bytes(settings.var_dir))):
        if free is not None and free < reserve:
            return (
                f"the disk of {name} is full ({free // 2**20} MiB free, DISK_RESERVE_BYTES={reserve // 2**20} MiB): "
                "uploads are refused until space is freed"
            )
    return None


class Health:
    def __init__(self, settings: Settings, cache: Cache, storage: Storage, pipeline: Pipeline | None) -> None:
        """Probes use a connection of their own: requests holding every connection of the
        process's pool (stuck on a lock, say) must not keep them from answering."""
        self.settings = settings
        self.db = Database(settings.replace(db_pool_size=1, db_timeout=min(PROBE_TIMEOUT, settings.db_timeout)))
        self.cache = cache
        self.storage = storage
        self.pipeline = pipeline

    def check_ready(self) -> None:
        """Return when the database answers, no request is stuck on it, this node's clock agrees
        with it, its disks are not full and the media pipeline makes progress (as the supervisor
        judges it); raise `ServiceUnavailable` saying what is wrong otherwise."""
        problem = self._database_problem() or disk_problem(self.storage, self.settings) or self._pipeline_problem()
        if problem is not None:
            raise ServiceUnavailable(problem, retry_after=10)

    def record_gauges(self) -> None:
        """Probe each dependency now and set the gauges (dependency_up, backlog, queue depth)."""
        metrics.DEPENDENCY_UP.labels("redis").set(self.cache.call("ping", default=False) is True)
        metrics.DEPENDENCY_UP.labels("storage").set(self.storage.writable() and disk_problem(self.storage, self.settings) is None)
        try:
            with self.db.transaction() as conn:
                metrics.BACKLOG.set(media.backlog(conn))
            metrics.DEPENDENCY_UP.labels("postgres").set(1)
        except ServiceUnavailable:
            metrics.DEPENDENCY_UP.labels("postgres").set(0)
        if self.pipeline is not None:
            metrics.QUEUE_DEPTH.set(self.pipeline.jobs.qsize())
            metrics.DEPENDENCY_UP.labels("pipeline").set(self._pipeline_problem() is None)

    def close(self) -> None:
        self.db.close()

    def _database_problem(self) -> str | None:
        """Raises `ServiceUnavailable` when the database does not answer."""
        stuck_after = min(1.0, self.settings.db_lock_timeout / 2)
        asked = time.time()
        with self.db.transaction() as conn:
            found = health.readiness(conn, stuck_after)
        offset = _offset(asked, found.clock)
        if found.stuck:
            held = ", ".join(map(str, found.blockers)) or "another session"
            return (
                f"requests are stuck on the database: {found.stuck} sessions have waited over {stuck_after:g} s "
                f"for locks held by backend {held}"
            )
        return clock_problem(offset, self.settings)

    def _pipeline_problem(self) -> str | None:
        if self.pipeline is None:
            return None
        reason = self.pipeline.health.stall.reason
        return f"the media pipeline is stalled: {reason}" if reason else None
