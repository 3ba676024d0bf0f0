"""The maintenance service: what operators do by hand with the `memedroid` command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from memedroid.db import Database
from memedroid.errors import Conflict
from memedroid.repositories import comments, media, posts
from memedroid.storage import Storage


class Maintenance:
    def __init__(self, db: Database, storage: Storage) -> None:
        self.db = db
        self.storage = storage

    def stats(self) -> dict[str, Any]:
        """Media by status, the durable backlog, and the bytes in each storage area."""
        with self.db.transaction() as conn:
            by_status, backlog = media.count_by_status(conn), media.backlog(conn)
        return {"media": by_status, "backlog": backlog, "storage_bytes": self.storage.size_bytes()}

    def purge_removed(self, older_than: timedelta) -> dict[str, int]:
        """Delete for good what moderators removed longer than `older_than` ago: the posts
        (a media's files go with its last post: one shown by another post stays), and the
        bodies of comments. What a ban with an end hides is kept for its end to restore."""
        before = datetime.now(UTC) - older_than
        with self.db.transaction() as conn:
            found = posts.purgeable(conn, before)
            erased = comments.purge_removed(conn, before)
        media_deleted = 0
        for post_id, media_id in found:
            with self.db.transaction() as conn:
                gone = posts.delete(conn, post_id, media_id)
            if gone is not None:
                self.storage.remove_media(gone.files, gone.sha256)
                media_deleted += 1
        return {"posts": len(found), "media": media_deleted, "comments": erased}

    def quarantined_urls(self, media_url: str, within: timedelta) -> list[str]:
        """The URLs of the final files taken out of the public area within `within` (a removal,
        a ban): what a CDN in front must purge, since it may keep them for a year."""
        with self.db.transaction() as conn:
            names = media.quarantined_since(conn, datetime.now(UTC) - within)
        return [f"{media_url}/{name}" for name in names]

    def reprocess(self, post_id: int | None) -> list[int]:
        """Give the failed media of `post_id` (of every post: None) a fresh set of attempts;
        the ids requeued. Nothing changes when one of them no longer has its raw upload
        (`Conflict`), or the post's media has not failed."""
        with self.db.transaction() as conn:
            ids = media.failed_ids(conn) if post_id is None else [posts.get(conn, post_id).media_id]
            requeued = media.requeue_failed(conn, ids)
            missing = [row.id for row in requeued if not self.storage.raw_exists(row.sha256)]
            if missing:  # raised inside the transaction: it rolls back
                raise Conflict(f"cannot reprocess: the original upload of media {missing} is no longer stored")
            if post_id is not None and not requeued:
                raise Conflict(f"cannot reprocess: the media of post {post_id} has not failed")
        return [row.id for row in requeued]
