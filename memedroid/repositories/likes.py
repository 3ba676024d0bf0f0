"""The likes repository: who likes what, like counts, and views flushed from Redis."""

from __future__ import annotations

from memedroid.db import Connection
from memedroid.repositories.counters import Counted
from memedroid.repositories.queries import queries


def set_like(conn: Connection, user_id: int, post_id: int, liked: bool) -> Counted | None:
    """Like or unlike (idempotent); the post's new like count, or None when nothing changed."""
    change = queries.likes.insert_like if liked else queries.likes.delete_like
    row = change(conn, user_id=user_id, post_id=post_id)
    return None if row is None else Counted(**row)


def liked_among(conn: Connection, user_id: int, post_ids: list[int]) -> set[int]:
    """Which of `post_ids` the user likes."""
    return {row["post_id"] for row in queries.likes.list_liked_post_ids(conn, user_id=user_id, post_ids=post_ids)}


def add_views(conn: Connection, views: dict[int, int]) -> None:
    """Add a batch of view counts, by post, in one statement."""
    queries.likes.add_view_counts(conn, post_ids=list(views), counts=list(views.values()))
