"""The moderation service: roles, removing and restoring posts, and the moderation log every
action writes to in the same transaction.

A removal takes effect everywhere at once through the listings' `listed` column and the
O(1) cache version bump: Redis's pages at once, each worker's local tier within
FEED_LOCAL_SECONDS.
"""

from __future__ import annotations

import logging
from typing import Any

from memedroid.cache import FeedCache
from memedroid.db import Database
from memedroid.errors import Conflict, NotFound
from memedroid.repositories import moderation, posts
from memedroid.services import cursors

log = logging.getLogger(__name__)


class Moderation:
    def __init__(self, db: Database, cache: FeedCache) -> None:
        self.db = db
        self.cache = cache

    def grant_role(self, username: str, role: str, moderator_id: int | None = None) -> dict[str, Any]:
        """Give `username` a role (logged; a None moderator is the command line)."""
        with self.db.transaction() as conn:
            account = moderation.set_role(conn, username, role)
            if account is None:
                raise NotFound(f"no user named {username!r}")
            moderation.log(conn, moderator_id, f"grant_{role}", ("user", account["id"]))
        log.info("role granted", extra={"event": "role_granted", "user_id": account["id"], "role": role})
        return account

    def remove_post(self, post_id: int, moderator_id: int, reason: str) -> None:
        """Take a post out of every listing for everyone but its author and moderators."""
        self._change_post(post_id, moderator_id, reason, remove=True)

    def restore_post(self, post_id: int, moderator_id: int, reason: str) -> None:
        """Bring a removed post back where it was."""
        self._change_post(post_id, moderator_id, reason, remove=False)

    def _change_post(self, post_id: int, moderator_id: int, reason: str, remove: bool) -> None:
        """Remove or restore a post (404 for none; 409 when it is that way already), log it in
        the same transaction, and drop every cached page."""
        action, already = ("remove_post", "removed already") if remove else ("restore_post", "not removed")
        with self.db.transaction() as conn:
            if posts.status(conn, post_id) is None:
                raise NotFound(f"no post {post_id}")
            if not (posts.remove(conn, post_id, reason) if remove else posts.restore(conn, post_id)):
                raise Conflict(f"post {post_id} is {already}")
            moderation.log(conn, moderator_id, action, ("post", post_id), reason)
        self.cache.invalidate()
        log.info("post moderated", extra={"event": action, "post_id": post_id, "moderator_id": moderator_id})

    def log_page(self, cursor: str | None, limit: int, moderators: bool) -> dict[str, Any]:
        """The moderation log, newest first; the moderator's name only for `moderators`."""
        before = cursors.MAX_ID if cursor is None else cursors.decode(cursor, _log_cursor)
        with self.db.transaction() as conn:
            rows = moderation.entries(conn, before, limit + 1)
        items = [_entry(row, moderators) for row in rows[:limit]]
        more = len(rows) > limit
        return {"items": items, "next_cursor": cursors.encode([items[-1]["id"]]) if more else None}


def _log_cursor(values: list[Any]) -> int:
    (before,) = values
    return cursors.integer(before, 1, cursors.MAX_ID)


def _entry(row: dict[str, Any], moderators: bool) -> dict[str, Any]:
    entry = {
        "id": row["id"],
        "action": row["action"],
        "target": {"type": row["target_type"], "id": row["target_id"]},
        "reason": row["reason"],
        "created_at": row["created_at"],
    }
    return {**entry, "moderator": row["moderator"]} if moderators else entry
