"""The comments service: threads under posts. Only completed posts take comments (anything
else is a 404), bodies are plain text, and a deleted comment keeps its place without its body.

A thread page is the replies to one parent (none: the post's top-level comments) in `top` or
`new` order, each with up to REPLIES_INLINE replies of its own for two more tiers, and a
`replies_cursor` wherever more replies exist than are shown (`GET /comments/{id}/replies`
goes on from it). Pages are cached like feed pages, under the feed version and the thread's
own, which every comment, deletion and comment like in it bumps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from memedroid.cache import FeedCache, Page
from memedroid.db import Database
from memedroid.errors import Forbidden, NotFound, ValidationError
from memedroid.repositories import comments, posts, users
from memedroid.repositories.comments import Comment
from memedroid.repositories.counters import Counted, Counters
from memedroid.repositories.users import Viewer
from memedroid.services import cursors
from memedroid.services.posts import visible

SORTS = ("top", "new")
REPLIES_INLINE = 3
PAGE_TTL = 15
THREAD_VERSION = "memedroid:thread:{}:version"


def encode_cursor(sort: str, comment: Comment | None) -> str:
    """A cursor for the comments after `comment` in `sort` order (None: from the first)."""
    after = comments.FIRST[sort] if comment is None else comment.sort_key(sort)
    return cursors.encode([sort, *after.values()])


def decode_cursor(sort: str, cursor: str) -> dict[str, int]:
    def read(values: list[Any]) -> dict[str, int]:
        if values[0] != sort or len(values) != len(comments.FIRST[sort]) + 1:
            raise ValueError
        return {
            name: cursors.integer(value, 0, cursors.MAX_COUNT if name == "before_likes" else cursors.MAX_ID)
            for name, value in zip(comments.FIRST[sort], values[1:], strict=True)
        }

    return cursors.decode(cursor, read)


@dataclass(frozen=True)
class Comments:
    db: Database
    cache: FeedCache
    counters: Counters

    def add(self, post_id: int, author_id: int, body: str, parent_id: int | None) -> dict[str, Any]:
        """Comment on a completed post, or reply to one of its comments (not a deleted one)."""
        with self.db.transaction() as conn:
            if posts.status(conn, post_id) != "completed":
                raise NotFound(f"no post {post_id}")
            parent = None
            if parent_id is not None:
                parent = comments.find(conn, parent_id)
                if parent is None or parent.post_id != post_id:
                    raise ValidationError({"parent_id": f"is not a comment on post {post_id}"})
                if not parent.shown:
                    raise ValidationError({"parent_id": f"is a {_gone(parent)} comment: it takes no replies"})
            comment_id, counted = comments.insert(conn, post_id, parent, author_id, body)
            comment = comments.get(conn, comment_id)
        self.changed(post_id, counted)
        return comment.to_json()

    def get(self, comment_id: int, viewer: Viewer) -> dict[str, Any]:
        """One comment, where its post may be seen; a removed one with its body for its author
        and moderators."""
        with self.db.transaction() as conn:
            comment = comments.get(conn, comment_id)
            if not visible(posts.visibility(conn, comment.post_id), viewer.id, viewer.moderator):
                raise NotFound(f"no comment {comment_id}")
        return comment.to_json(insider=viewer.moderator or comment.author_id == viewer.id)

    def delete(self, comment_id: int, user_id: int) -> None:
        """Erase a comment of `user_id`'s: it keeps its place, and its replies theirs."""
        with self.db.transaction() as conn:
            comment = comments.get(conn, comment_id)
            if comment.author_id != user_id:
                raise Forbidden("only the author may delete a comment")
            counted = comments.delete(conn, comment_id)
        if counted is not None:
            self.changed(comment.post_id, counted)

    def like(self, comment_id: int, user_id: int, liked: bool) -> None:
        """Like or unlike a comment (idempotent); a deleted or removed one, or one on a post
        that is not listed, cannot be liked."""
        with self.db.transaction() as conn:
            comment = comments.get(conn, comment_id)
            if posts.status(conn, comment.post_id) != "completed":
                raise NotFound(f"no comment {comment_id}")
            if liked and not comment.shown:
                raise NotFound(f"comment {comment_id} was {_gone(comment)}")
            comments.set_like(conn, user_id, comment_id, liked)
        self.cache.changed(THREAD_VERSION.format(comment.post_id))

    def thread(
        self, post_id: int | None, parent_id: int | None, sort: str, cursor: str | None, limit: int, viewer: Viewer
    ) -> Page:
        """A thread page as JSON, with its tag: the top-level comments of `post_id`, or the replies to
        `parent_id`, where the post may be seen (a thread of a post that is not listed, its
        author's and moderators' alone, is never cached); for a reader who blocks anyone,
        without those accounts' comments (and their replies), never cached."""
        after = decode_cursor(sort, cursor) if cursor else comments.FIRST[sort]
        insider = False  # a reader who may see the post although it is not listed
        if post_id is None or viewer.id is not None:
            with self.db.transaction() as conn:
                if post_id is None:
                    assert parent_id is not None
                    post_id = comments.get(conn, parent_id).post_id
                shown = posts.visibility(conn, post_id)
            if not visible(shown, viewer.id, viewer.moderator):
                raise NotFound(f"no post {post_id}")
            insider = not shown.listed
        thread_post = post_id

        def render(_stored: bool) -> str:
            with self.db.transaction() as conn:
                found = comments.thread(
                    conn, thread_post, parent_id or 0, sort, after, limit, REPLIES_INLINE, viewer.blocker_id, insider
                )
                if not found and not insider and posts.status(conn, thread_post) != "completed":
                    raise NotFound(f"no post {thread_post}")  # (a page of a post not listed is empty)
            return orjson.dumps(_page(found, sort, limit)).decode()

        key = f"memedroid:thread:{post_id}:{parent_id or 0}:{sort}:{cursor}:{limit}"
        also = THREAD_VERSION.format(post_id)
        private = viewer.blocking or insider
        cached = self.cache.read_through(key, PAGE_TTL, render, shared=cursor is None, also=also, private=private)
        if viewer.id is None:
            return cached
        page = orjson.loads(cached.body)
        every = [node for item in page["items"] for node in _walk(item)]
        if every:
            with self.db.transaction() as conn:
                liked = comments.liked_among(conn, viewer.id, [node["id"] for node in every])
            for node in every:
                node["liked_by_me"] = node["id"] in liked
        return Page.of(orjson.dumps(page).decode())

    def by_author(self, author: str, cursor: str | None, limit: int, viewer: Viewer) -> dict[str, Any]:
        """A user's comments that `viewer` may read, newest first (see `comments.by_author`)."""
        before = decode_cursor("new", cursor)["before_id"] if cursor else cursors.MAX_ID
        with self.db.transaction() as conn:
            found = comments.by_author(conn, author, before, limit, viewer.show_nsfw, viewer.blocker_id)
            if not found and not users.exists(conn, author):
                raise NotFound(f"no user named {author!r}")
        more = len(found) == limit
        return {"items": [c.to_json() for c in found], "next_cursor": encode_cursor("new", found[-1]) if more else None}

    def changed(self, post_id: int, counted: Counted) -> None:
        """After a comment on `post_id` came or went: its count mirrored, its thread pages dropped."""
        self.counters.mirror(post_id, "comments", counted)
        self.cache.changed(THREAD_VERSION.format(post_id))


def _gone(comment: Comment) -> str:
    return "deleted" if comment.deleted else "removed"


def _page(found: list[Comment], sort: str, limit: int) -> dict[str, Any]:
    """The page's tree from its rows (page items first, then each tier in order): every
    comment with `replies` and, where more replies exist than are shown, `replies_cursor`."""
    nodes: dict[int, dict[str, Any]] = {}
    shown: dict[int, list[Comment]] = {}
    items: list[dict[str, Any]] = []
    for comment in found:
        node = nodes[comment.id] = {**comment.to_json(), "replies": [], "replies_cursor": None}
        parent = nodes.get(comment.parent_id or 0)  # none for a page item: its parent is not on the page
        (items if parent is None else parent["replies"]).append(node)
        if parent is not None:
            shown.setdefault(parent["id"], []).append(comment)
    for comment in found:
        replies = shown.get(comment.id, [])
        if comment.reply_count > len(replies):
            nodes[comment.id]["replies_cursor"] = encode_cursor(sort, replies[-1] if replies else None)
    last = found[len(items) - 1] if len(items) == limit else None
    return {"items": items, "next_cursor": encode_cursor(sort, last) if last else None}


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(child for reply in node["replies"] for child in _walk(reply))]
