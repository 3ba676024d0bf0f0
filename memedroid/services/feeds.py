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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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

    def page(self, tag: str | None, author: str | None, cursor: str | None, limit: int, viewer_id: int | None) -> str:
        """One feed page as JSON: global, or one tag's, or one author's.

        The hot path: an anonymous reader of a page this process served less than
        FEED_LOCAL_SECONDS ago costs no round trip and no JSON work; of a page in Redis, one
        round trip. Counters in a cached page are the hot ones from when it was rendered, at
        most PAGE_TTL seconds old."""
        before = decode_cursor(cursor) if cursor else feed.FIRST_PAGE
        key = f"memedroid:feed:{'tag' if tag else 'author' if author else 'all'}:{tag or (author or '').lower()}:{cursor}:{limit}"
        raw = self.cache.local.get(key)
        if raw is None:
            found = self.cache.lookup(key, PAGE_TTL)
            raw = found.raw
            if raw is None:
                page = self._read_page(tag, author, before, limit)
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

    def _read_page(self, tag: str | None, author: str | None, before: tuple[str, int], limit: int) -> dict[str, Any]:
        with self.db.transaction() as conn:
            found = feed.page(conn, tag, author, before, limit)
            if author and not found and not users.exists(conn, author):
                raise NotFound(f"no user named {author!r}")
        items = [post.to_json(self.media_url) for post in found]
        last = found[-1] if len(found) == limit else None
        return {"items": items, "next_cursor": encode_cursor(last.created_at.isoformat(), last.id) if last else None}

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
