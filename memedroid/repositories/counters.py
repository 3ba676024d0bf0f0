"""Hot counters in Redis: like, view and comment counts for display, and views waiting to be
flushed.

PostgreSQL stays the truth. Likes are written there synchronously and only mirrored here, so
a Redis restart never loses one. A view is only an increment here (`VIEWS_PENDING`), never a
write to PostgreSQL on the request path; the janitor flushes the increments in one batch,
so a Redis restart loses at most one flush interval of views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memedroid.cache import Cache

COUNTERS = "memedroid:counters:{}"  # hash: likes, views, comments (what clients see)
VIEWS_PENDING = "memedroid:views:pending"  # hash: post id -> views not yet in PostgreSQL
VIEWS_FLUSHING = "memedroid:views:flushing"
FIELDS = {"likes": "like_count", "views": "view_count", "comments": "comment_count"}  # hash field: API item field
TTL_SECONDS = 3600  # longer than any cached body they correct

# Mirror a count unless one counted later is mirrored already: transactions on one post
# commit in the order of their stamps, but their mirrors may reach Redis in any order.
_MIRROR = """
local stamp = ARGV[1] .. '_at'
if tonumber(redis.call('HGET', KEYS[1], stamp) or '0') < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], stamp, ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
"""
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


@dataclass(frozen=True)
class Counted:
    """A count PostgreSQL just returned, and when it was counted (`counted_at()`, microseconds)."""

    count: int
    counted_at: int


class Counters:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def count_view(self, post_id: int) -> None:
        self.cache.script(_VIEW, [VIEWS_PENDING, COUNTERS.format(post_id)], [str(post_id)])

    def mirror(self, post_id: int, field: str, counted: Counted) -> None:
        """Show a count PostgreSQL just returned (`field`: one of FIELDS)."""
        self.cache.script(_MIRROR, [COUNTERS.format(post_id)], [field, counted.count, counted.counted_at, TTL_SECONDS])

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
