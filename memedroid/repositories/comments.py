"""The comments repository: threads under posts (see `sql/queries/comments.sql`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memedroid.db import Connection
from memedroid.errors import NotFound
from memedroid.repositories.counters import Counted
from memedroid.repositories.queries import queries

# Where each order starts: before every comment in it.
FIRST: dict[str, dict[str, int]] = {
    "new": {"before_id": 2**63 - 1},
    "top": {"before_likes": 2**31 - 1, "before_id": 2**63 - 1},
}


@dataclass(frozen=True)
class Comment:
    id: int
    post_id: int
    parent_id: int | None
    depth: int
    body: str
    like_count: int
    reply_count: int
    created_at: datetime
    deleted_at: datetime | None
    author_id: int
    author_username: str
    removed_at: datetime | None
    removed_reason: str | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def shown(self) -> bool:
        """Whether everyone sees its body: it is neither deleted nor removed."""
        return self.deleted_at is None and self.removed_at is None

    def sort_key(self, sort: str) -> dict[str, int]:
        """Where this comment stands in `sort` order: the query parameters of the page after it."""
        return {"before_id": self.id} if sort == "new" else {"before_likes": self.like_count, "before_id": self.id}

    def to_json(self, insider: bool = False) -> dict[str, Any]:
        """The API representation. A deleted or removed comment keeps its place without body or
        author, except a removed one for an `insider` (its author, a moderator)."""
        hidden = self.deleted or (self.removed_at is not None and not insider)
        return {
            "id": self.id,
            "post_id": self.post_id,
            "parent_id": self.parent_id,
            "depth": self.depth,
            "deleted": self.deleted,
            "removed": None if self.removed_at is None else {"at": self.removed_at, "reason": self.removed_reason},
            "body": None if hidden else self.body,
            "author": None if hidden else {"id": self.author_id, "username": self.author_username},
            "created_at": self.created_at,  # ISO 8601 from either JSON encoder
            "like_count": self.like_count,
            "reply_count": self.reply_count,
        }


def insert(conn: Connection, post_id: int, parent: Comment | None, author_id: int, body: str) -> tuple[int, Counted]:
    """Add a comment (a reply to `parent`, or top-level); its id and the post's comment count."""
    row = queries.comments.insert_comment(
        conn,
        post_id=post_id,
        parent_id=parent.id if parent else None,
        author_id=author_id,
        depth=parent.depth + 1 if parent else 1,
        body=body,
    )
    return int(row["id"]), Counted(row["count"], row["counted_at"])


def find(conn: Connection, comment_id: int) -> Comment | None:
    row = queries.comments.get_comment(conn, id=comment_id)
    return None if row is None else Comment(**row)


def get(conn: Connection, comment_id: int) -> Comment:
    comment = find(conn, comment_id)
    if comment is None:
        raise NotFound(f"no comment {comment_id}")
    return comment


def by_ids(conn: Connection, comment_ids: list[int]) -> dict[int, Comment]:
    """The comments of `comment_ids` that exist, by id."""
    return {row["id"]: Comment(**row) for row in queries.comments.list_comments(conn, ids=comment_ids)}


def delete(conn: Connection, comment_id: int) -> Counted | None:
    """Erase a comment; the post's comment count, or None when it was deleted already."""
    row = queries.comments.delete_comment(conn, id=comment_id)
    return None if row is None else Counted(**row)


def remove(conn: Connection, comment_id: int, reason: str) -> Counted | None:
    """A moderator's removal; the post's comment count, or None when it was removed already."""
    row = queries.comments.remove_comment(conn, id=comment_id, reason=reason)
    return None if row is None else Counted(**row)


def restore(conn: Connection, comment_id: int) -> Counted | None:
    """Bring a removed comment back; the post's comment count, or None when it was not removed."""
    row = queries.comments.restore_comment(conn, id=comment_id)
    return None if row is None else Counted(**row)


def remove_authored(conn: Connection, author_id: int, reason: str) -> dict[int, Counted]:
    """Remove every comment of an author's (a ban that hides content); each post's new count."""
    rows = queries.comments.remove_authored_comments(conn, author_id=author_id, reason=reason)
    return {row["post_id"]: Counted(row["count"], row["counted_at"]) for row in rows}


def restore_authored(conn: Connection, author_id: int) -> dict[int, Counted]:
    """Restore what `remove_authored` removed (the ban is lifted); each post's new count."""
    rows = queries.comments.restore_authored_comments(conn, author_id=author_id)
    return {row["post_id"]: Counted(row["count"], row["counted_at"]) for row in rows}


def thread(
    conn: Connection,
    post_id: int,
    parent_id: int,
    sort: str,
    after: dict[str, int],
    limit: int,
    replies: int,
    blocker_id: int,
    unlisted_too: bool = False,
) -> list[Comment]:
    """A page of the replies to `parent_id` (0: the post's top-level comments) in `sort` order
    after `after` (`FIRST[sort]`: from the start), with up to `replies` replies each for two
    more tiers: page items first, then their replies, then theirs, each tier in order. None by
    an author `blocker_id` blocks (0: nobody), nor replies to theirs; none on a post that is not
    listed unless `unlisted_too`."""
    query = queries.comments.list_thread_new if sort == "new" else queries.comments.list_thread_top
    rows = query(
        conn, post_id=post_id, parent_id=parent_id, **after, page_size=limit, replies=replies, viewer_id=blocker_id,
        unlisted_too=unlisted_too,
    )  # fmt: skip
    return [Comment(**row) for row in rows]


def by_author(conn: Connection, author: str, before_id: int, limit: int, show_nsfw: bool, blocker_id: int) -> list[Comment]:
    """A user's comments, newest first: not the deleted or removed ones, nor those under a
    removed post or (without `show_nsfw`) an NSFW one; none when `blocker_id` blocks the user."""
    rows = queries.comments.list_user_comments(
        conn, author=author, before_id=before_id, page_size=limit, show_nsfw=show_nsfw, viewer_id=blocker_id
    )
    return [Comment(**row) for row in rows]


def set_like(conn: Connection, user_id: int, comment_id: int, liked: bool) -> None:
    """Like or unlike a comment (idempotent)."""
    change = queries.comments.insert_comment_like if liked else queries.comments.delete_comment_like
    change(conn, user_id=user_id, comment_id=comment_id)


def liked_among(conn: Connection, user_id: int, comment_ids: list[int]) -> set[int]:
    """Which of `comment_ids` the user likes."""
    rows = queries.comments.list_liked_comment_ids(conn, user_id=user_id, comment_ids=comment_ids)
    return {row["comment_id"] for row in rows}


def purge_removed(conn: Connection, removed_before: datetime) -> int:
    """Erase the bodies of comments removed before a time (as `posts.purgeable` chooses);
    how many."""
    return int(queries.comments.purge_removed_comments(conn, removed_before=removed_before))
