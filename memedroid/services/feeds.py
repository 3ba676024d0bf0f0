"""The read path: feed pages and posts, cache-aside in Redis, likes and views.

Feed pages and completed post bodies are cached under keys that embed a version number; the
finalizer (a post completes) and deletes bump it, which invalidates every cached page at once
without scanning keys. Cached bodies never hold `liked_by_me`, and their counters are
replaced by the hot ones from Redis when served. Without Redis every answer comes from
PostgreSQL, the same.

What is cached is bounded in bytes (see `cache`). A first page is cached at once, since every
reader of that feed starts there; a page behind a cursor, or a post, only when it is asked for
a second time within PAGE_TTL: a client walking cursors of its own making fills no cache.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import datetime
from typing import Any

from memedroid.cache import FEED_VERSION_KEY, Cache, LocalCache
from memedroid.db import Database, queries
from memedroid.errors import Forbidden, NotFound, ValidationError
from memedroid.repositories import posts
from memedroid.repositories.counters import Counters
from memedroid.repositories.posts import Post
from memedroid.settings import Settings
from memedroid.storage import Storage

log = logging.getLogger(__name__)

PAGE_TTL = 15
POST_TTL = 60
TAGS_TTL = 60
FIRST_PAGE = ("infinity", 2**63 - 1)  # before every (created_at, id)

# One round trip: the current feed version, the entry cached under it, and on a miss how
# many times the entry was asked for lately (counted for PAGE_TTL seconds).
_VERSIONED_GET = """
local version = redis.call('GET', KEYS[1]) or '0'
local found = redis.call('GET', ARGV[1] .. ':v' .. version)
if found then return {version, found, 0} end
local seen = redis.call('INCR', ARGV[1] .. ':seen')
if seen == 1 then redis.call('EXPIRE', ARGV[1] .. ':seen', ARGV[2]) end
return {version, false, seen}
"""


def encode_cursor(created_at: str, post_id: int) -> str:
    raw = json.dumps([created_at, post_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """The (created_at, id) a cursor stands for; a 400 for anything this API did not make."""
    try:
        created_at, post_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        datetime.fromisoformat(created_at)
        if not isinstance(post_id, int) or isinstance(post_id, bool) or not 0 < post_id < 2**63:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError({"cursor": "is not a cursor this API returned"}) from None
    return created_at, post_id


class Feeds:
    def __init__(self, db: Database, cache: Cache, storage: Storage, settings: Settings) -> None:
        self.db = db
        self.cache = cache
        self.counters = Counters(cache)
        self.storage = storage
        self.media_url = settings.media_url
        self.local = LocalCache("feed_local", settings.feed_local_seconds, settings.feed_local_bytes)

    # --- reads -----------------------------------------------------------------------------

    def page(self, tag: str | None, author: str | None, cursor: str | None, limit: int, viewer_id: int | None) -> str:
        """One feed page as JSON: global, or one tag's, or one author's.

        The hot path: an anonymous reader of a page this process served less than
        FEED_LOCAL_SECONDS ago costs no round trip and no JSON work; of a page in Redis, one
        round trip. Counters in a cached page are the hot ones from when it was rendered, at
        most PAGE_TTL seconds old."""
        before = decode_cursor(cursor) if cursor else FIRST_PAGE
        key = f"memedroid:feed:{'tag' if tag else 'author' if author else 'all'}:{tag or (author or '').lower()}:{cursor}:{limit}"
        raw = self.local.get(key)
        if raw is None:
            version, raw, seen = self._cached(key)
            if raw is None:
                page = self._read_page(tag, author, before, limit)
                self.counters.overlay(page["items"])
                raw = json.dumps(page, separators=(",", ":"))
                if cursor is None or seen > 1:
                    self._store(key, version, raw, PAGE_TTL)
                    self.counters.remember(page["items"])
            self.local.put(key, raw, shared=cursor is None)
        if viewer_id is None:
            return raw
        page = json.loads(raw)
        self._mark_liked(page["items"], viewer_id)
        return json.dumps(page, separators=(",", ":"))

    def _read_page(self, tag: str | None, author: str | None, before: tuple[str, int], limit: int) -> dict[str, Any]:
        with self.db.transaction() as conn:
            args = {"before_created_at": before[0], "before_id": before[1], "page_size": limit}
            if tag:
                rows = queries.feed.list_feed_by_tag(conn, tag=tag, **args)
            elif author:
                rows = queries.feed.list_feed_by_author(conn, author=author, **args)
            else:
                rows = queries.feed.list_feed(conn, **args)
            found = [Post(**row) for row in rows]
            if author and not found and not queries.users.get_user_by_username(conn, username=author):
                raise NotFound(f"no user named {author!r}")
        items = [post.to_json(self.media_url) for post in found]
        last = found[-1] if len(found) == limit else None
        return {"items": items, "next_cursor": encode_cursor(last.created_at.isoformat(), last.id) if last else None}

    def post(self, post_id: int, viewer_id: int | None, count_view: bool = True) -> dict[str, Any]:
        """One post (a view is counted); until completed only its author may see it."""
        key = f"memedroid:post:{post_id}"
        version, raw, seen = self._cached(key)
        body = None if raw is None else json.loads(raw)
        if body is None:
            with self.db.transaction() as conn:
                post = posts.get(conn, post_id)
            if not post.completed and post.author_id != viewer_id:
                raise NotFound(f"no post {post_id}")
            body = post.to_json(self.media_url)
            if post.completed:
                self.counters.remember([body])
                if seen > 1:
                    self._store(key, version, json.dumps(body), POST_TTL)
        if count_view and body["status"] == "completed":
            self.counters.count_view(post_id)
        self.counters.overlay([body])
        self._mark_liked([body], viewer_id)
        return body

    def _mark_liked(self, items: list[dict[str, Any]], viewer_id: int | None) -> None:
        if viewer_id is None or not items:
            return
        with self.db.transaction() as conn:
            liked = {
                row["post_id"]
                for row in queries.likes.list_liked_post_ids(conn, user_id=viewer_id, post_ids=[i["id"] for i in items])
            }
        for item in items:
            item["liked_by_me"] = item["id"] in liked

    def tags(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        pattern = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"
        return self._cached_rows(
            f"memedroid:tags:prefix:{prefix}:{limit}", "list_tags_by_prefix", pattern=pattern, max_count=limit
        )

    def trending(self, limit: int) -> list[dict[str, Any]]:
        return self._cached_rows(f"memedroid:tags:trending:{limit}", "list_trending_tags", hours=24, max_count=limit)

    def _cached_rows(self, key: str, query: str, **args: Any) -> list[dict[str, Any]]:
        rows = self.cache.call("get", key)
        self.cache.count("tags", rows is not None)
        if rows is not None:
            return list(json.loads(rows))
        with self.db.transaction() as conn:
            found = [dict(row) for row in getattr(queries.tags, query)(conn, **args)]
        self.cache.store(key, json.dumps(found), TAGS_TTL)
        return found

    # --- writes ----------------------------------------------------------------------------

    def like(self, post_id: int, user_id: int, liked: bool) -> None:
        """Like or unlike (idempotent). Only completed posts can be liked."""
        with self.db.transaction() as conn:
            if posts.status(conn, post_id) != "completed":
                raise NotFound(f"no post {post_id}")
            change = queries.likes.insert_like if liked else queries.likes.delete_like
            count = change(conn, user_id=user_id, post_id=post_id)
            if count is None:  # nothing changed
                count = queries.likes.get_like_count(conn, post_id=post_id)
        self.counters.set_likes(post_id, int(count))

    def delete(self, post_id: int, user_id: int) -> None:
        """Delete a post of `user_id`'s. Its media goes too unless another post shows it."""
        with self.db.transaction() as conn:
            post = posts.get(conn, post_id)
            if post.author_id != user_id:
                if post.completed:
                    raise Forbidden("only the author may delete a post")
                raise NotFound(f"no post {post_id}")
            gone = posts.delete(conn, post_id, post.media_id)
        if gone is not None:
            self.storage.remove_media([name for name in (gone["path"], gone["thumbnail_path"]) if name])
            self.storage.raw_path(gone["sha256"]).unlink(missing_ok=True)
        self.cache.bump_feed_version()
        self.local.clear()  # other processes see the delete within FEED_LOCAL_SECONDS
        log.info("post deleted", extra={"event": "post_deleted", "post_id": post_id, "media_deleted": gone is not None})

    # --- cache ---------------------------------------------------------------------------

    def _cached(self, key: str) -> tuple[str | None, str | None, int]:
        """The feed version now, the JSON cached under `key` for it (None: a miss), and on a
        miss how often `key` was asked for lately, this time included (0: no Redis)."""
        found = self.cache.script(_VERSIONED_GET, [FEED_VERSION_KEY], [key, PAGE_TTL])
        if not found:
            self.cache.count("feed", False)
            return None, None, 0
        version, raw = (value.decode() if isinstance(value, bytes) else value for value in found[:2])
        self.cache.count("feed", raw is not None)
        return str(version), raw, int(found[2])

    def _store(self, key: str, version: str | None, raw: str, ttl: int) -> None:
        if version is not None:
            self.cache.store(f"{key}:v{version}", raw, ttl)
