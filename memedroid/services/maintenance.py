"""The maintenance service: what operators do by hand with the `memedroid` command."""

from __future__ import annotations

from typing import Any

from memedroid.db import Database
from memedroid.errors import Conflict
from memedroid.repositories import media, posts
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

    def reprocess(self, post_id: int | None) -> list[int]:
        """Give the failed media of `post_id` (of every post: None) a fresh set of attempts;
        the ids requeued. Nothing changes when one of them no longer has its raw upload
        (`Conflict`), or the post's media has not failed."""
        with self.db.transaction() as conn:
            ids = media.failed_ids(conn) if post_id is None else [posts.get(conn, post_id).media_id]
            requeued = media.requeue_failed(conn, ids)
            missing = [row.id for row in requeued if not self.storage.raw_path(row.sha256).exists()]
            if missing:  # raised inside the transaction: it rolls back
                raise Conflict(f"cannot reprocess: the original upload of media {missing} is no longer stored")
            if post_id is not None and not requeued:
                raise Conflict(f"cannot reprocess: the media of post {post_id} has not failed")
        return [row.id for row in requeued]
