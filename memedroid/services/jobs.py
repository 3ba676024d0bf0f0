"""The job queue as services see it: offering jobs to the media workers, and noting in their
rows when (the janitor's sweep leaves rows offered lately alone)."""

from __future__ import annotations

import logging
import threading

from memedroid.db import Database
from memedroid.errors import ServiceUnavailable
from memedroid.messages import Job
from memedroid.repositories import media
from memedroid.transport import JobChannel

log = logging.getLogger(__name__)


class JobQueue:
    """Offers jobs on this node's job channel. What it cannot offer (no pipeline on this node,
    or a full channel) it tells the nodes with media workers of (`JobListener`); the rows wait
    for a sweep besides."""

    def __init__(self, db: Database, channel: JobChannel | None) -> None:
        self.db = db
        self.channel = channel

    def offer(self, jobs: list[Job], tell: bool = True) -> list[int]:
        """Offer `jobs` without waiting and mark the ones that fit as queued; return their ids.
        What does not fit is told to the nodes with media workers (unless not `tell`: what a
        node was told of and cannot take is not told again, or a full queue would hear its own
        notice over and over), and stays pending for the sweep (a duplicate offer is harmless:
        claims are conditional)."""
        offered = self.channel.offer(jobs) if self.channel is not None and jobs else []
        missed = [job.media_id for job in jobs if job.media_id not in offered] if tell else []
        if offered or missed:
            try:
                with self.db.transaction() as conn:
                    media.mark_queued(conn, offered)
                    media.notify_jobs(conn, missed)
            except ServiceUnavailable:
                log.warning("offered jobs not marked queued", extra={"event": "mark_queued_failed", "media_ids": offered})
        return offered

    def depth(self) -> int | None:
        """Jobs waiting for a worker (None: no pipeline in this process)."""
        return None if self.channel is None else self.channel.qsize()


class JobListener:
    """Offers this node's workers the jobs other nodes told of (see `JobQueue.offer`): a thread
    of the supervisor holding one connection that LISTENs, reconnecting after a failure."""

    def __init__(self, db: Database, queue: JobQueue) -> None:
        self.db = db
        self.queue = queue
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with self.db.session() as conn, media.jobs_notified(conn) as notified:
                    while not self._stopped.is_set():
                        if ids := notified(1.0):
                            self.queue.offer([Job(media_id) for media_id in dict.fromkeys(ids)], tell=False)
            except Exception as exc:  # the database went away (or worse): listen again shortly, never die
                log.warning("job listener reconnecting", extra={"event": "job_listener_error", "error": str(exc)})
                self._stopped.wait(5)
