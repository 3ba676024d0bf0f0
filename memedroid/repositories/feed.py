"""The feed repository: pages of completed posts in one of three orders, one query a page,
keyset pagination on the order's own key (see `sql/queries/feed.sql`):

- `new`: `(created_at, id)`, newest first;
- `hot`: `(generation, hot rank, id)`, from the ranks the janitor stores
  (`sql/queries/ranks.sql`); a walk keeps the generation it started in while it is kept;
- `top`: `(like_count, id)` among the posts since a time, most liked first.

Each row carries its `sort_key`: a page's last one is where the next page starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from memedroid.db import Connection
from memedroid.repositories.posts import Post
from memedroid.repositories.queries import queries

_QUERIES: dict[tuple[str, str | None], Callable[..., Iterable[dict[str, Any]]]] = {
    ("new", None): queries.feed.list_feed,
    ("new", "tag"): queries.feed.list_feed_by_tag,
    ("new", "author"): queries.feed.list_feed_by_author,
    ("hot", None): queries.feed.list_hot,
    ("hot", "tag"): queries.feed.list_hot_by_tag,
    ("hot", "author"): queries.feed.list_hot_by_author,
    ("top", None): queries.feed.list_top,
    ("top", "tag"): queries.feed.list_top_by_tag,
    ("top", "author"): queries.feed.list_top_by_author,
}
# Where each order starts: before every sort key in it.
FIRST: dict[str, dict[str, Any]] = {
    "new": {"before_created_at": "infinity", "before_id": 2**63 - 1},
    "hot": {"generation": 0, "before_rank": float("inf"), "before_id": 2**63 - 1},
    "top": {"before_likes": 2**31 - 1, "before_id": 2**63 - 1},
}


def page(
    conn: Connection, sort: str, scope: tuple[str, str] | None, params: dict[str, Any], limit: int
) -> tuple[list[Post], Sequence[Any] | None]:
    """Up to `limit` posts in `sort` order, of everyone or of one `("tag", name)` or
    `("author", username)`, after the sort key in `params` (`FIRST[sort]` for a first page;
    `top` also takes `since`); and the last one's sort key."""
    query = _QUERIES[sort, scope[0] if scope else None]
    rows = list(query(conn, **params, **dict([scope] if scope else []), page_size=limit))
    posts = [Post(**{name: value for name, value in row.items() if name != "sort_key"}) for row in rows]
    return posts, rows[-1]["sort_key"] if rows else None
