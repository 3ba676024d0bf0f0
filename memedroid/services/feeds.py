"""The feeds service: pages of completed posts (global, one tag's, one author's) in one of
three orders (`new`, `hot`, `top` within a window), and tags.

Pages are cached under the feed version (`cache.FeedCache`), bounded in bytes; `top` pages
under the likes version as well. A first page is cached at once, since every reader of that
feed starts there; a page behind a cursor only when it is asked for a second time within
PAGE_TTL: a client walking cursors of its own making fills no cache. Cached pages never hold
`liked_by_me`; their counters are the hot ones from when they were rendered, and a reader
signed in gets them as they are now. Without Redis every answer comes from PostgreSQL, the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from memedroid.cache import LIKES_VERSION_KEY, FeedCache, Page
from memedroid.db import Connection, Database
from memedroid.errors import NotFound
from memedroid.repositories import feed, likes, tags, users
from memedroid.repositories.counters import Counters
from memedroid.repositories.tags import TagCount
from memedroid.repositories.users import Viewer
from memedroid.services import cursors

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


def encode_cursor(sort: str, sort_key: Sequence[Any]) -> str:
    """A cursor for the page after `sort_key` in `sort` order (a `new` cursor is the bare key,
    as before ranked feeds existed)."""
    return cursors.encode(list(sort_key) if sort == "new" else [sort, *sort_key])


def decode_cursor(sort: str, cursor: str) -> dict[str, Any]:
    """The query parameters a cursor of `sort` order stands for; a 400 for anything else."""
    return cursors.decode(cursor, _READERS[sort])


# A time as PostgreSQL writes it in a page's sort key: Python reads more (week dates, offsets
# past ±15:59, a comma before the fraction) than PostgreSQL takes back.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?[+-](0\d|1[0-5])(:[0-5]\d)?")
MAX_RANK = 1e6  # far above any hot rank: ln(likes) over at least 2^1.8


def _read_new(values: list[Any]) -> dict[str, Any]:
    created_at, post_id = values
    if not isinstance(created_at, str) or not _TIMESTAMP.fullmatch(created_at):
        raise ValueError
    datetime.fromisoformat(created_at)
    return {"before_created_at": created_at, "before_id": cursors.integer(post_id, 1, cursors.MAX_ID)}


def _read_hot(values: list[Any]) -> dict[str, Any]:
    sort, generation, rank, post_id = values
    if sort != "hot" or not isinstance(rank, (int, float)) or isinstance(rank, bool) or not 0 <= rank <= MAX_RANK:
        raise ValueError
    return {
        "generation": cursors.integer(generation, 0, cursors.MAX_ID),
        "before_rank": float(rank),
        "before_id": cursors.integer(post_id, 1, cursors.MAX_ID),
    }


def _read_top(values: list[Any]) -> dict[str, Any]:
    sort, likes, post_id = values
    if sort != "top":
        raise ValueError
    return {
        "before_likes": cursors.integer(likes, 0, cursors.MAX_COUNT),
        "before_id": cursors.integer(post_id, 1, cursors.MAX_ID),
    }


_READERS = {"new": _read_new, "hot": _read_hot, "top": _read_top}


def name_reposts(conn: Connection | None, items: list[dict[str, Any]], viewer: Viewer) -> None:
    """Name the original of each repost in `items` only to a reader its listings would show it
    to (not an NSFW post to one who did not opt in, not a post by an account they block;
    moderators see all): to others `repost_of` says it is a repost, with its distance, and names
    nothing. A reader who blocks anyone comes with `conn`, to read whom among the originals."""
    originals = [item["repost_of"] for item in items if item.get("repost_of")]
    if not originals:
        return
    blocked: set[int] = set()
    if viewer.blocking and viewer.id is not None and conn is not None:
        blocked = users.blocked_among(conn, viewer.id, list({original["author_id"] for original in originals}))
    for original in originals:
        nsfw, author_id = original.pop("nsfw", False), original.pop("author_id", None)
        if not viewer.moderator and ((nsfw and not viewer.show_nsfw) or author_id in blocked):
            original["post_id"] = original["author"] = None


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
    reposts: bool  # show `repost_of` (REPOSTS is not `allow`)

    def page(self, listing: Listing, cursor: str | None, limit: int, viewer: Viewer) -> Page:
        """One page of a listing as JSON, as `viewer` may see it, with its tag.

        The hot path: an anonymous reader of a page this process served less than
        FEED_LOCAL_SECONDS ago costs no round trip and no JSON work; of a page in Redis, one
        round trip. Counters in a cached page are the hot ones from when it was rendered, at
        most PAGE_TTL seconds old. A `top` page is cached under the likes version as well: a
        like may change its order. Pages are cached per audience (NSFW shown or not), and a
        reader who blocks anyone gets pages filtered for them alone, never cached."""
        params = decode_cursor(listing.sort, cursor) if cursor else feed.FIRST[listing.sort]
        params = {**params, "show_nsfw": viewer.show_nsfw, "viewer_id": viewer.blocker_id}

        reader = viewer if viewer.blocking else Viewer(show_nsfw=viewer.show_nsfw)  # a shared page: its audience's

        def render(stored: bool) -> str:
            page = self._read_page(listing, params, limit, reader)
            self.counters.overlay(page["items"])
            if stored:
                self.counters.remember(page["items"])
            return orjson.dumps(page).decode()  # a tenth of the stdlib encoder's time on a page

        key = f"memedroid:feed:{listing.key}:{viewer.audience}:{cursor}:{limit}"
        also = LIKES_VERSION_KEY if listing.sort == "top" else None
        cached = self.cache.read_through(key, PAGE_TTL, render, shared=cursor is None, also=also, private=viewer.blocking)
        if viewer.id is None:
            return cached
        page = orjson.loads(cached.body)  # a reader signed in: their likes, and the counters as they are now
        if page["items"]:
            self.counters.overlay(page["items"])
            with self.db.read() as conn:
                mark_liked(conn, page["items"], viewer.id)
        return Page.of(orjson.dumps(page).decode())

    def _read_page(self, listing: Listing, params: dict[str, Any], limit: int, viewer: Viewer) -> dict[str, Any]:
        if listing.sort == "top":
            days = WINDOWS[listing.window or "day"]
            params = {**params, "since": "-infinity" if days is None else datetime.now(UTC) - timedelta(days=days)}
        with self.db.transaction() as conn:
            found, last = feed.page(conn, listing.sort, listing.scope, params, limit)
            if listing.author and not found and not users.exists(conn, listing.author):
                raise NotFound(f"no user named {listing.author!r}")
            items = [post.to_json(self.media_url, self.reposts) for post in found]
            name_reposts(conn, items, viewer)
        after = last if len(found) == limit else None  # a short page is the last
        return {"items": items, "next_cursor": None if after is None else encode_cursor(listing.sort, after)}

    def tags(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        """Autocomplete: tags starting with `prefix`, with how many completed posts carry each."""
        return self._cached_tags(f"memedroid:tags:prefix:{prefix}:{limit}", lambda conn: tags.by_prefix(conn, prefix, limit))

    def trending(self, limit: int) -> list[dict[str, Any]]:
        """The tags with the most completed posts in the last day."""
        return self._cached_tags(f"memedroid:tags:trending:{limit}", lambda conn: tags.trending(conn, TRENDING_HOURS, limit))

    def _cached_tags(self, key: str, read: Callable[[Connection], list[TagCount]]) -> list[dict[str, Any]]:
        """Tag counts, cached like pages: under the feed version, so a post that leaves the
        listings (deleted, removed) leaves the counts with them."""

        def render(_stored: bool) -> str:
            with self.db.transaction() as conn:
                return orjson.dumps([tag.to_json() for tag in read(conn)]).decode()

        return list(orjson.loads(self.cache.read_through(key, TAGS_TTL, render, shared=True).body))
