"""The publishing service: turns an uploaded file into a post and a durable media job.

The raw file is in place under its content hash before the row that points at it is
committed, and every 202 is backed by a committed row: the pipeline (or, when the job queue
is full, the janitor's sweep) takes it from there.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from memedroid import jobs, metrics
from memedroid.db import Database
from memedroid.errors import NotFound, ServiceUnavailable, Unprocessable, UnsupportedMediaType, ValidationError
from memedroid.repositories import media, posts
from memedroid.repositories.posts import Post
from memedroid.settings import Settings
from memedroid.sniff import ACCEPTED, sniff
from memedroid.storage import Storage, StoredUpload
from memedroid.transport import Pipeline

log = logging.getLogger(__name__)

MAX_CAPTION = 2000
MAX_TAGS = 10
TAG = re.compile(r"[a-z0-9_]{1,32}")
ACCEPTED_LABELS = ", ".join(dict.fromkeys(t.label for t in ACCEPTED.values()))
POLL_SECONDS = 0.25


def normalise_tags(values: list[str]) -> list[str]:
    """Tags from repeated and/or comma-separated fields: lower case, deduplicated, validated."""
    tags: list[str] = []
    for value in values:
        for raw in value.split(","):
            tag = raw.strip().lower().lstrip("#")
            if not tag:
                continue
            if not TAG.fullmatch(tag):
                raise ValidationError({"tags": f"{raw.strip()!r} is not a tag: use 1 to 32 of a-z, 0-9 and _"})
            if tag not in tags:
                tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationError({"tags": f"at most {MAX_TAGS} tags, got {len(tags)}"})
    return tags


def check_caption(caption: str) -> str:
    caption = caption.strip()
    if len(caption) > MAX_CAPTION:
        raise ValidationError({"caption": f"must be at most {MAX_CAPTION} characters"})
    return caption


class Publishing:
    """Owns the upload rules: capacity, type, dedup, and the post's visibility."""

    def __init__(self, db: Database, storage: Storage, settings: Settings, pipeline: Pipeline | None = None) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.pipeline = pipeline
        # Long-polls hold a request thread while they wait: at most half of them may.
        self._waiters = threading.BoundedSemaphore(max(1, settings.web_threads // 2))

    def backlog(self) -> int | None:
        """Media rows pending or processing; None when the database does not answer."""
        try:
            with self.db.transaction() as conn:
                return media.backlog(conn)
        except ServiceUnavailable:
            return None

    def check_capacity(self) -> None:
        """Refuse (503, before anything is written) when the durable backlog is too long."""
        with self.db.transaction() as conn:
            backlog = media.backlog(conn)
        if backlog >= self.settings.max_backlog:
            log.warning("upload refused: backlog full", extra={"event": "backlog_full", "backlog": backlog})
            raise ServiceUnavailable("too many uploads are waiting to be processed; try again later", retry_after=30)

    def publish(self, author_id: int, upload: StoredUpload, caption: str, tags: list[str], request_id: str | None) -> Post:
        """Store the upload's bytes as media (new, or shared with an earlier upload of the
        same bytes) and create the post. The upload's temporary file is always consumed."""
        try:
            source_type = self._accepted_type(upload)
            raw = self.storage.keep_raw(upload)
        except BaseException:
            upload.path.unlink(missing_ok=True)
            raise
        with self.db.transaction() as conn:
            row, created = media.insert_or_find(conn, upload.sha256, source_type, upload.size, request_id)
            retried = row.status == "failed" and not row.rejected  # processing failed, not the file
            if retried:
                media.requeue_failed(conn, [row.id])
            if not row.rejected:
                post_id = posts.insert(conn, author_id, row.id, caption, tags)
                post = posts.get(conn, post_id)
        if row.status == "completed":
            raw.unlink(missing_ok=True)  # nothing will read it: the media was already processed
        if row.rejected:
            raise Unprocessable(f"this file was already rejected: {row.error}")
        log.info(
            "post accepted",
            extra={
                "event": "upload_accepted",
                "post_id": post_id,
                "media_id": row.id,
                "dedup": not created,
                "retried": retried,
                "status": post.status,
                "bytes": upload.size,
                "source_type": source_type,
            },
        )
        metrics.UPLOAD_BYTES.labels(source_type).inc(upload.size)
        if created or retried:
            self.enqueue([jobs.Job(row.id, request_id)])
        return post

    def _accepted_type(self, upload: StoredUpload) -> str:
        if upload.size == 0:
            raise Unprocessable("the file is empty")
        found = sniff(upload.head)
        if found.accepted is None:
            raise UnsupportedMediaType(
                f"unsupported file type: detected {found.detected}; accepted types are {ACCEPTED_LABELS}",
                detected=found.detected,
            )
        return found.accepted.name

    def enqueue(self, batch: list[jobs.Job]) -> None:
        """Offer jobs to the workers; what does not fit stays pending for the sweep."""
        if self.pipeline is None or not batch:
            return
        offered = self.pipeline.jobs.offer(batch)
        with self.db.transaction() as conn:
            media.mark_queued(conn, offered)

    def queue_depth(self) -> int | None:
        """Jobs waiting for a worker (None: no pipeline in this process)."""
        return None if self.pipeline is None else self.pipeline.jobs.qsize()

    def pipeline_problem(self) -> str | None:
        """Why the pipeline makes no progress, as the supervisor judges it; None when it does."""
        if self.pipeline is None:
            return None
        return self.pipeline.health.stall.reason or None

    def get(self, post_id: int, viewer_id: int | None) -> Post:
        """A post as `viewer_id` may see it: until completed, only its author does."""
        with self.db.transaction() as conn:
            post = posts.get(conn, post_id)
        if not post.completed and post.author_id != viewer_id:
            raise NotFound(f"no post {post_id}")
        return post

    def wait(self, post_id: int, viewer_id: int | None, seconds: float) -> None:
        """Wait up to `seconds` while a post `viewer_id` may see is still pending/processing.
        When half of this process's request threads already wait, return at once instead:
        long-polls never take the last threads."""
        status = self.get(post_id, viewer_id).status
        if status not in ("pending", "processing") or not self._waiters.acquire(blocking=False):
            return
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                with self.db.transaction() as conn:
                    if posts.status(conn, post_id) != status:
                        return
        finally:
            self._waiters.release()
