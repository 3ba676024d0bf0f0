"""Hot counters in Redis: like, view and comment counts for display, and views waiting to be
flushed.

PostgreSQL stays the truth. Likes are written there synchronously and only mirrored here, so
a Redis restart never loses one. A view is only an increment here (`VIEWS_PENDING`), never a
write to PostgreSQL on the request path; the janitor flushes the increments in one batch,
so a Redis restart loses at most one flush interval of views.
"""

from __future__ import annotations

import threading
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
return 1
"""
MAX_UNMIRRORED = 10_000  # counts Redis refused that this process keeps to mirror again
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
    """The displayed counters. A count Redis refused to mirror (out of memory, read-only, away)
    never leaves the old one showing: it is kept and mirrored again, before anything else this
    process asks of the counters, until Redis takes it (commit stamps keep an older count from
    overwriting a newer one); meanwhile the old mirror is dropped when Redis lets it be. Reads
    never extend a mirror's life (it is seeded with its time to live and only a newer count
    renews it), so whatever a process died before mirroring is gone within TTL_SECONDS."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.unmirrored: dict[tuple[str, str], Counted] = {}  # (key, field): the count Redis has not taken, oldest first
        self._lock = threading.Lock()

    def count_view(self, post_id: int) -> None:
        self.cache.script(_VIEW, [VIEWS_PENDING, COUNTERS.format(post_id)], [str(post_id)])

    def mirror(self, post_id: int, field: str, counted: Counted) -> None:
        """Show a count PostgreSQL just returned (`field`: one of FIELDS)."""
        key = COUNTERS.format(post_id)
        with self._lock:
            self.unmirrored.pop((key, field), None)
            self.unmirrored[(key, field)] = counted
            while len(self.unmirrored) > MAX_UNMIRRORED:
                del self.unmirrored[next(iter(self.unmirrored))]
        if not self._mirror_unmirrored():
            self.cache.call("delete", key)  # out of memory, Redis still deletes: readers then ask PostgreSQL

    def _mirror_unmirrored(self) -> bool:
        """Mirror the counts Redis has not taken yet, oldest first; whether it took them all."""
        with self._lock:
            waiting = list(self.unmirrored.items())
        for (key, field), counted in waiting:
            if self.cache.script(_MIRROR, [key], [field, counted.count, counted.counted_at, TTL_SECONDS]) is None:
                return False
            with self._lock:
                if self.unmirrored.get((key, field)) is counted:
                    del self.unmirrored[(key, field)]
        return True

    def remember(self, items: list[dict[str, Any]]) -> None:
        """Seed the displayed counters from freshly read rows (existing values win: they are
        newer; an existing mirror's time to live is left as it is)."""

        def seed(pipe: Any) -> None:
            for item in items:
                key = COUNTERS.format(item["id"])
                for field, name in FIELDS.items():
                    pipe.hsetnx(key, field, item[name])
                pipe.expire(key, TTL_SECONDS, nx=True)

        if items:
            if self.unmirrored:
                self._mirror_unmirrored()
            self.cache.pipeline(seed)

    def overlay(self, items: list[dict[str, Any]]) -> None:
        """Replace the counters in `items` with the hot ones, in one round trip."""
        if not items:
            return
        if self.unmirrored:
            self._mirror_unmirrored()
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
