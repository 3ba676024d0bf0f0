"""The job queue as services see it: offering jobs to the media workers, and noting in their
rows when (the janitor's sweep leaves rows offered lately alone)."""

from __future__ import annotations

import logging

from memedroid.db import Database
from memedroid.errors import ServiceUnavailable
from memedroid.messages import Job
from memedroid.repositories import media
from memedroid.transport import JobChannel

log = logging.getLogger(__name__)


class JobQueue:
    """Offers jobs on the pipeline's job channel; without one (an app with no pipeline, a
    one-off CLI run) nothing is offered and the rows wait for the supervisor's sweep."""

    def __init__(self, db: Database, channel: JobChannel | None) -> None:
        self.db = db
        self.channel = channel

    def offer(self, jobs: list[Job]) -> list[int]:
        """Offer `jobs` without waiting and mark the ones that fit as queued; return their ids.
        What does not fit, or cannot be marked, stays pending for the sweep (a duplicate offer
        is harmless: claims are conditional)."""
        if self.channel is None or not jobs:
            return []
        offered = self.channel.offer(jobs)
        if offered:
            try:
                with self.db.transaction() as conn:
                    media.mark_queued(conn, offered)
            except ServiceUnavailable:
                log.warning("offered jobs not marked queued", extra={"event": "mark_queued_failed", "media_ids": offered})
        return offered

    def depth(self) -> int | None:
        """Jobs waiting for a worker (None: no pipeline in this process)."""
        return None if self.channel is None else self.channel.qsize()
