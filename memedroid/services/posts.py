"""The posts service: one post — shown, long-polled, liked, deleted — and the one rule of who
may see it: a post is public once its media completed and while it is not removed; otherwise
only its author and moderators see it.

Completed post bodies are cached under the feed version like pages (`cache.FeedCache`), from
their second request; their counters are replaced by the hot ones from Redis when served,
and a view is one Redis increment (the janitor flushes views to PostgreSQL).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from memedroid.cache import LIKES_VERSION_KEY, FeedCache
from memedroid.db import Database
from memedroid.errors import Forbidden, NotFound
from memedroid.repositories import hashes, likes, posts
from memedroid.repositories.counters import Counters
from memedroid.repositories.posts import Post, Visibility
from memedroid.repositories.users import Viewer
from memedroid.services import quarantine
from memedroid.services.feeds import mark_liked, name_reposts
from memedroid.settings import Settings
from memedroid.storage import Storage

log = logging.getLogger(__name__)

POST_TTL = 60
POLL_SECONDS = 0.25


def visible(post: Post | Visibility, viewer_id: int | None, moderator: bool = False) -> bool:
    """Who may see a post: everyone once it is listed; moderators always; its author unless
    they deleted it after moderators removed it."""
    return post.listed or moderator or (post.author_id == viewer_id and post.author_deleted_at is None)


class Posts:
    def __init__(self, db: Database, cache: FeedCache, counters: Counters, storage: Storage, settings: Settings) -> None:
        self.db = db
        self.cache = cache
        self.counters = counters
        self.storage = storage
        self.media_url = settings.media_url
        self.reposts = settings.shows_reposts
        # Long-polls hold a request thread while they wait: at most half of them may.
        self._waiters = threading.BoundedSemaphore(max(1, settings.web_threads // 2))

    def show(self, post_id: int, viewer: Viewer, wait: float = 0) -> dict[str, Any]:
        """A post as `viewer` may see it (a view is counted), after waiting up to `wait`
        seconds while it is pending or processing."""
        if wait:
            self.wait(post_id, viewer, wait)
        key = f"memedroid:post:{post_id}"
        found = self.cache.lookup(key, POST_TTL)
        body = None if found.raw is None else orjson.loads(found.raw)
        if body is None:
            post = self._visible(post_id, viewer)
            body = post.to_json(self.media_url, self.reposts)
            if post.listed:
                self.counters.remember([body])
                if found.seen > 1:
                    self.cache.store(key, found.version, orjson.dumps(body).decode(), POST_TTL)
        if body["status"] == "completed":
            self.counters.count_view(post_id)
        self.counters.overlay([body])
        if viewer.id is None:
            name_reposts(None, [body], viewer)
        else:
            with self.db.read() as conn:
                name_reposts(conn, [body], viewer)
                mark_liked(conn, [body], viewer.id)
        return dict(body)

    def wait(self, post_id: int, viewer: Viewer, seconds: float) -> None:
        """Wait up to `seconds` while a post `viewer` may see is still pending/processing.
        When half of this process's request threads already wait, return at once instead:
        long-polls never take the last threads."""
        status = self._visible(post_id, viewer).status
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

    def like(self, post_id: int, user_id: int, liked: bool) -> None:
        """Like or unlike (idempotent). Only completed posts can be liked."""
        with self.db.transaction() as conn:
            if posts.status(conn, post_id) != "completed":
                raise NotFound(f"no post {post_id}")
            counted = likes.set_like(conn, user_id, post_id, liked)
        if counted is not None:
            self.counters.mirror(post_id, "likes", counted)
            self.cache.liked(LIKES_VERSION_KEY)

    def delete(self, post_id: int, user_id: int) -> None:
        """Delete a post of `user_id`'s. Its media goes too unless another post shows it. A post
        moderators removed is only taken from its author's sight: the author may not erase a
        moderator's action (and its evidence) before `purge-removed` does."""
        with self.db.transaction() as conn:
            post = posts.get(conn, post_id)
            if post.author_id != user_id or not visible(post, user_id):
                if visible(post, user_id):
                    raise Forbidden("only the author may delete a post")
                raise NotFound(f"no post {post_id}")
            if post.removed_at is not None:
                posts.delete_removed(conn, post_id)
                gone = None
            else:
                gone = posts.delete(conn, post_id, post.media_id)
        if gone is not None:
            self.storage.remove_media(gone.files, gone.sha256)
        quarantine.settle(self.db, self.storage)  # the posts still showing its media may all be removed
        self.cache.invalidate()
        log.info("post deleted", extra={"event": "post_deleted", "post_id": post_id, "media_deleted": gone is not None})

    def media_folder(self) -> Path | None:
        """Where the processed files lie (the app serves them in development only)."""
        return self.storage.media_folder()

    def similar(self, post_id: int, viewer: Viewer, limit: int) -> dict[str, Any]:
        """The other posts of the same media or a near-duplicate of it that `viewer`'s listings
        show, nearest first, each with its pHash `distance` (0: the same file)."""
        self._visible(post_id, viewer)
        with self.db.transaction() as conn:
            found = hashes.similar_posts(conn, post_id, limit, viewer.show_nsfw, viewer.blocker_id)
            items = [{**post.to_json(self.media_url, self.reposts), "distance": distance} for post, distance in found]
            name_reposts(conn, items, viewer)
        self.counters.overlay(items)
        return {"items": items}

    def _visible(self, post_id: int, viewer: Viewer) -> Post:
        with self.db.transaction() as conn:
            post = posts.get(conn, post_id)
        if not visible(post, viewer.id, viewer.moderator):
            raise NotFound(f"no post {post_id}")
        return post
