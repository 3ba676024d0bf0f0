"""Messages between the pipeline's processes. The database row is the job; these only say
"work on media X now" (a duplicate is harmless) and "here is what became of it"."""

from __future__ import annotations

import logging
import queue
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    media_id: int
    request_id: str | None = None


@dataclass(frozen=True)
class Output:
    """A finished file in a worker's tmp folder and the suffix of its final name."""

    path: str
    suffix: str


@dataclass(frozen=True)
class Result:
    """What a worker made of one leased job. `outcome` is `completed`, `failed` (the input is
    bad: permanent) or `retry` (something went wrong that another attempt may not hit)."""

    media_id: int
    lease_token: str
    request_id: str | None
    attempt: int
    source_type: str
    outcome: str
    duration_ms: float
    error: str | None = None
    kind: str | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    rendition: Output | None = None
    thumbnail: Output | None = None
    variants: dict[str, Any] = field(default_factory=dict)
    blurhash: str | None = None
    work_dir: str | None = None


def offer(job_queue: Any, jobs: list[Job]) -> list[int]:
    """Put jobs on the bounded queue without blocking; return the ids that fit.

    A full queue is not an error: the rows are durable and the janitor's sweep offers them again.
    """
    offered: list[int] = []
    for job in jobs:
        try:
            job_queue.put_nowait(job)
        except queue.Full:
            log.warning("job queue full; the sweep will enqueue later", extra={"event": "queue_full", "media_id": job.media_id})
            break
        offered.append(job.media_id)
    return offered
