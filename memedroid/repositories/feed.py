"""The feed repository: pages of completed posts, newest first, one query a page (keyset
pagination on `(created_at, id)`, see `sql/queries/feed.sql`)."""

from __future__ import annotations

from memedroid.db import Connection
from memedroid.repositories.posts import Post
from memedroid.repositories.queries import queries

FIRST_PAGE = ("infinity", 2**63 - 1)  # before every (created_at, id)


def page(conn: Connection, tag: str | None, author: str | None, before: tuple[str, int], limit: int) -> list[Post]:
    """Up to `limit` posts older than `before`: of one tag, of one author, or of everyone."""
    args = {"before_created_at": before[0], "before_id": before[1], "page_size": limit}
    if tag:
        rows = queries.feed.list_feed_by_tag(conn, tag=tag, **args)
    elif author:
        rows = queries.feed.list_feed_by_author(conn, author=author, **args)
    else:
        rows = queries.feed.list_feed(conn, **args)
    return [Post(**row) for row in rows]
