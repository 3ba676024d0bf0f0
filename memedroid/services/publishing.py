"""The publishing service: turns an uploaded file into a post and a durable media job.

The raw file is in place under its content hash before the row that points at it is
committed, and every 202 is backed by a committed row: the pipeline (or, when the job queue
is full, the janitor's sweep) takes it from there. From before the file is stored until that
row commits, the upload's transaction holds the file against the orphan sweep (an advisory
lock the sweep respects), however long the commit waits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memedroid import metrics
from memedroid.cache import FeedCache
from memedroid.db import Connection, Database
from memedroid.errors import InsufficientStorage, ServiceUnavailable, Unprocessable, UnsupportedMediaType, ValidationError
from memedroid.messages import Job
from memedroid.repositories import hashes, media, posts
from memedroid.repositories.users import Viewer
from memedroid.services import quarantine
from memedroid.services.feeds import name_reposts
from memedroid.services.health import disk_problem
from memedroid.services.jobs import JobQueue
from memedroid.settings import Settings
from memedroid.sniff import ACCEPTED, sniff
from memedroid.storage import Storage, StoredUpload, UploadSink

log = logging.getLogger(__name__)

MAX_CAPTION = 2000
MAX_TAGS = 10
TAG = re.compile(r"[a-z0-9_]{1,32}")
ACCEPTED_LABELS = ", ".join(dict.fromkeys(t.label for t in ACCEPTED.values()))
FIELDS = {"caption", "tags", "nsfw"}
FLAGS = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class Draft:
    """What an upload's form says of its post."""

    caption: str = ""
    tags: list[str] = field(default_factory=list)
    nsfw: bool = False  # the author marks it not safe for work


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


@dataclass(frozen=True)
class Received:
    """An upload as the HTTP layer read it: the file, already in storage under a temporary
    name, and the form's text fields."""

    upload: StoredUpload
    fields: dict[str, list[str]]


# How the HTTP layer reads an upload: given a way to make a sink for at most `limit` bytes of
# file in storage, and that limit.
Receive = Callable[[Callable[[int], UploadSink], int], Received]


@dataclass(frozen=True)
class Publishing:
    """Owns the upload rules: capacity, form fields, type, dedup; hands the job to the workers."""

    db: Database
    storage: Storage
    settings: Settings
    jobs: JobQueue
    cache: FeedCache  # a post of bytes already processed is listed at once

    def upload(self, author_id: int, receive: Receive, request_id: str | None) -> dict[str, Any]:
        """Refuse when the backlog is full (before a byte is read), let `receive` stream the
        body into storage, check the fields and publish; return the post as the API shows it.
        Nothing the upload wrote stays behind when it is refused."""
        self.check_capacity()
        received = receive(self.storage.upload_sink, self.settings.max_upload_bytes)
        try:
            draft = form_fields(received.fields)
        except BaseException:
            received.upload.drop()
            raise
        post = self.publish(author_id, received.upload, draft, request_id)
        item = post.to_json(self.settings.media_url, self.settings.shows_reposts)
        name_reposts(None, [item], Viewer(author_id))
        return item

    def check_capacity(self) -> None:
        """Refuse, before anything is written: 507 when a disk of this node is full (the upload
        might fill it, and processing would not find room), 503 when the durable backlog is too
        long."""
        if (full := disk_problem(self.storage, self.settings)) is not None:
            log.warning("upload refused: disk full", extra={"event": "disk_full", "error": full})
            raise InsufficientStorage(full)
        with self.db.transaction() as conn:
            backlog = media.backlog(conn)
        if backlog >= self.settings.max_backlog:
            log.warning("upload refused: backlog full", extra={"event": "backlog_full", "backlog": backlog})
            raise ServiceUnavailable("too many uploads are waiting to be processed; try again later", retry_after=30)

    def publish(self, author_id: int, upload: StoredUpload, draft: Draft, request_id: str | None) -> posts.Post:
        """Store the upload's bytes as media (new, or shared with an earlier upload of the
        same bytes) and create the post. The upload's temporary file is always consumed."""
        try:
            source_type = self._accepted_type(upload)
            with self.db.transaction() as conn:
                media.hold_raw_file(conn, upload.sha256)  # the orphan sweep leaves the file alone until we commit
                if hashes.is_banned(conn, upload.sha256):
                    raise Unprocessable(hashes.BANNED)
                self.storage.keep_raw(upload)
                row, created = media.insert_or_find(conn, upload.sha256, source_type, upload.size, request_id)
                retried = row.status == "failed" and not row.rejected  # processing failed, not the file
                if retried:
                    media.requeue_failed(conn, [row.id])
                original = self._reposted(conn, row)
                if not row.rejected and original is None:
                    post_id = posts.insert(conn, author_id, row.id, draft.caption, draft.tags, draft.nsfw)
                    post = posts.get(conn, post_id)
        except BaseException:
            upload.drop()  # the temporary file, unless it was kept (a raw file no row needs goes with the sweep)
            raise
        if row.status == "completed":
            self.storage.drop_raw(upload.sha256.hex())  # nothing will read it: the media was already processed
            quarantine.settle(self.db, self.storage)  # its files come back if no other post showed them
        if row.rejected:
            raise Unprocessable(f"this file was already rejected: {row.error}")
        if original is not None:
            raise Unprocessable(f"a repost of post {original}")
        if row.status == "completed":
            self.cache.invalidate()  # listed at once: every tier learns it as from the finalizer's completion
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
            self.jobs.offer([Job(row.id, request_id)])
        return post

    def _reposted(self, conn: Connection, row: media.MediaRow) -> int | None:
        """With REPOSTS=reject, the post that already shows these very bytes (processed)."""
        if self.settings.reposts != "reject" or row.status != "completed":
            return None
        return hashes.first_post(conn, [row.id])

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


def form_fields(fields: dict[str, list[str]]) -> Draft:
    """The caption, tags and NSFW flag of an upload's form; a 400 naming each field that is wrong."""
    captions, flags = fields.get("caption", []), fields.get("nsfw", [])
    if len(captions) > 1:
        raise ValidationError({"caption": "send at most one caption"})
    if len(flags) > 1 or any(flag.lower() not in FLAGS for flag in flags):
        raise ValidationError({"nsfw": "send at most one: true or false"})
    caption, tags = check_caption(captions[0] if captions else ""), normalise_tags(fields.get("tags", []))
    unknown = fields.keys() - FIELDS
    if unknown:
        raise ValidationError({name: "is not a known field" for name in unknown})
    return Draft(caption, tags, any(FLAGS[flag.lower()] for flag in flags))
