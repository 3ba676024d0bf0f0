"""The feeds service: pages of completed posts (global, one tag's, one author's) and tags.

Pages are cached under the feed version (`cache.FeedCache`), bounded in bytes. A first page is
cached at once, since every reader of that feed starts there; a page behind a cursor only
when it is asked for a second time within PAGE_TTL: a client walking cursors of its own making
fills no cache. Cached pages never hold `liked_by_me`; their counters are the hot ones from
when they were rendered. Without Redis every answer comes from PostgreSQL, the same.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from memedroid.cache import FeedCache
from memedroid.db import Connection, Database
from memedroid.errors import NotFound, ValidationError
from memedroid.repositories import feed, likes, tags, users
from memedroid.repositories.counters import Counters
from memedroid.repositories.tags import TagCount

PAGE_TTL = 15
TAGS_TTL = 60
TRENDING_HOURS = 24


SORTS = tuple(feed.FIRST)  # new (the default), hot, top
WINDOWS = {"day": 1, "week": 7, "month": 30, "year": 365, "all": None}  # days (None: no limit)


@dataclass(frozen=True)
class Listing:
    """Which feed: its order (`new`, `hot`, or `top` within `window`, default a day), of
    everyone or of one tag or one author."""

    sort: str = "new"
    window: str | None = None
    tag: str | None = None
    author: str | None = None

    @property
    def scope(self) -> tuple[str, str] | None:
        return ("tag", self.tag) if self.tag else ("author", self.author) if self.author else None

    @property
    def key(self) -> str:
        """The listing's part of a cache key: `new:all:`, `top-week:tag:cats`, ..."""
        scope = f"tag:{self.tag}" if self.tag else f"author:{(self.author or '').lower()}" if self.author else "all:"
        return f"{self.sort}{'-' + self.window if self.window else ''}:{scope}"


def encode_cursor(sort: str, position: Sequence[Any]) -> str:
    """A cursor for the page after `position` in `sort` order (a `new` cursor is the bare
    position, as before ranked feeds existed)."""
    raw = json.dumps(list(position) if sort == "new" else [sort, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> dict[str, Any]:
    """The query parameters a cursor of `sort` order stands for; a 400 for anything this API
    did not make for that order."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list):
            raise ValueError
        if sort == "new":
            created_at, post_id = values
            datetime.fromisoformat(created_at)
            return {"before_created_at": created_at, "before_id": _integer(post_id, 1, 2**63 - 1)}
        if values[0] != sort:
            raise ValueError
        if sort == "hot":
            _, generation, rank, post_id = values
            if not isinstance(rank, (int, float)) or isinstance(rank, bool) or not 0 <= rank < float("inf"):
                raise ValueError
            return {
                "generation": _integer(generation, 0, 2**63 - 1),
                "before_rank": float(rank),
                "before_id": _integer(post_id, 1, 2**63 - 1),
            }
        _, likes, post_id = values
        return {"before_likes": _integer(likes, 0, 2**31 - 1), "before_id": _integer(post_id, 1, 2**63 - 1)}
    except (ValueError, TypeError, IndexError, binascii.Error, UnicodeDecodeError):
        raise ValidationError({"cursor": "is not a cursor this API returned for this sort"}) from None


def _integer(value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError
    return value


def mark_liked(conn: Connection, items: list[dict[str, Any]], viewer_id: int) -> None:
    """Set `liked_by_me` on API items for the signed-in `viewer_id`, in one query."""
    liked = likes.liked_among(conn, viewer_id, [item["id"] for item in items])
    for item in items:
        item["liked_by_me"] = item["id"] in liked


@dataclass(frozen=True)
class Feeds:
    db: Database
    cache: FeedCache
    counters: Counters
    media_url: str

    def page(self, listing: Listing, cursor: str | None, limit: int, viewer_id: int | None) -> str:
        """One page of a listing as JSON.

        The hot path: an anonymous reader of a page this process served less than
        FEED_LOCAL_SECONDS ago costs no round trip and no JSON work; of a page in Redis, one
        round trip. Counters in a cached page are the hot ones from when it was rendered, at
        most PAGE_TTL seconds old. A `top` page is cached under the likes version as well: a
        like may change its order."""
        params = decode_cursor(listing.sort, cursor) if cursor else feed.FIRST[listing.sort]
        key = f"memedroid:feed:{listing.key}:{cursor}:{limit}"
        raw = self.cache.local.get(key)
        if raw is None:
            found = self.cache.lookup(key, PAGE_TTL, by_likes=listing.sort == "top")
            raw = found.raw
            if raw is None:
                page = self._read_page(listing, params, limit)
                self.counters.overlay(page["items"])
                raw = orjson.dumps(page).decode()  # a tenth of the stdlib encoder's time on a page
                if cursor is None or found.seen > 1:
                    self.cache.store(key, found.version, raw, PAGE_TTL)
                    self.counters.remember(page["items"])
            self.cache.local.put(key, raw, shared=cursor is None)
        if viewer_id is None:
            return raw
        page = orjson.loads(raw)
        if page["items"]:
            with self.db.transaction() as conn:
                mark_liked(conn, page["items"], viewer_id)
        return orjson.dumps(page).decode()

    def _read_page(self, listing: Listing, params: dict[str, Any], limit: int) -> dict[str, Any]:
        if listing.sort == "top":
            days = WINDOWS[listing.window or "day"]
            params = {**params, "since": "-infinity" if days is None else datetime.now(UTC) - timedelta(days=days)}
        with self.db.transaction() as conn:
            found, last = feed.page(conn, listing.sort, listing.scope, params, limit)
            if listing.author and not found and not users.exists(conn, listing.author):
                raise NotFound(f"no user named {listing.author!r}")
        items = [post.to_json(self.media_url) for post in found]
        more = last is not None and len(found) == limit
        return {"items": items, "next_cursor": encode_cursor(listing.sort, last) if last and more else None}

    def tags(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        """Autocomplete: tags starting with `prefix`, with how many completed posts carry each."""
        return self._cached_tags(f"memedroid:tags:prefix:{prefix}:{limit}", lambda conn: tags.by_prefix(conn, prefix, limit))

    def trending(self, limit: int) -> list[dict[str, Any]]:
        """The tags with the most completed posts in the last day."""
        return self._cached_tags(f"memedroid:tags:trending:{limit}", lambda conn: tags.trending(conn, TRENDING_HOURS, limit))

    def _cached_tags(self, key: str, read: Callable[[Connection], list[TagCount]]) -> list[dict[str, Any]]:
        redis = self.cache.cache
        rows = redis.call("get", key)
        redis.count("tags", rows is not None)
        if rows is not None:
            return list(orjson.loads(rows))
        with self.db.transaction() as conn:
            found = [tag.to_json() for tag in read(conn)]
        redis.store(key, orjson.dumps(found).decode(), TAGS_TTL)
        return found
