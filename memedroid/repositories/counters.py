"""Hot counters in Redis: like, view and comment counts for display, and views waiting to be
flushed.

PostgreSQL stays the truth. Likes are written there synchronously and only mirrored here, so
a Redis restart never loses one. A view is only an increment here (`VIEWS_PENDING`), never a
write to PostgreSQL on the request path; the janitor flushes the increments in one batch,
so a Redis restart loses at most one flush interval of views.
"""

from __future__ import annotations

from typing import Any

from memedroid.cache import Cache

COUNTERS = "memedroid:counters:{}"  # hash: likes, views, comments (what clients see)
VIEWS_PENDING = "memedroid:views:pending"  # hash: post id -> views not yet in PostgreSQL
VIEWS_FLUSHING = "memedroid:views:flushing"
FIELDS = {"likes": "like_count", "views": "view_count", "comments": "comment_count"}  # hash field: API item field
TTL_SECONDS = 3600  # longer than any cached body they correct

# Count a view: pending for the flush, and on the displayed counter when one is cached.
_VIEW = """
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'views', 1)
end
"""
# Take the pending views for a flush, unless an earlier flush did not finish.
_TAKE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
end
return redis.call('HGETALL', KEYS[2])
"""


class Counters:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def count_view(self, post_id: int) -> None:
        self.cache.script(_VIEW, [VIEWS_PENDING, COUNTERS.format(post_id)], [str(post_id)])

    def set_likes(self, post_id: int, likes: int) -> None:
        """Mirror a like count PostgreSQL just returned."""
        self._set(post_id, "likes", likes)

    def set_comments(self, post_id: int, comments: int) -> None:
        """Mirror a comment count PostgreSQL just returned."""
        self._set(post_id, "comments", comments)

    def _set(self, post_id: int, field: str, value: int) -> None:
        key = COUNTERS.format(post_id)
        self.cache.pipeline(lambda p: p.hset(key, field, value).expire(key, TTL_SECONDS))

    def remember(self, items: list[dict[str, Any]]) -> None:
        """Seed the displayed counters from freshly read rows (existing values win: they are newer)."""

        def seed(pipe: Any) -> None:
            for item in items:
                key = COUNTERS.format(item["id"])
                for field, name in FIELDS.items():
                    pipe.hsetnx(key, field, item[name])
                pipe.expire(key, TTL_SECONDS)

        if items:
            self.cache.pipeline(seed)

    def overlay(self, items: list[dict[str, Any]]) -> None:
        """Replace the counters in `items` with the hot ones, in one round trip."""
        if not items:
            return
        found = self.cache.pipeline(lambda p: [p.hmget(COUNTERS.format(item["id"]), *FIELDS) for item in items])
        for item, values in zip(items, found or [], strict=False):  # no Redis: nothing found
            for name, value in zip(FIELDS.values(), values, strict=True):
                if value is not None:
                    item[name] = int(value)

    def take_pending_views(self) -> dict[int, int]:
        """Views counted since the last flush (they stay in Redis until `flushed()`)."""
        raw = self.cache.script(_TAKE, [VIEWS_PENDING, VIEWS_FLUSHING], []) or []
        return {int(raw[i]): int(raw[i + 1]) for i in range(0, len(raw), 2)}

    def flushed(self) -> None:
        self.cache.call("delete", VIEWS_FLUSHING)
