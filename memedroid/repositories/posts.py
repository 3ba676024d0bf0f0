"""The posts repository: posts with their author, media and tags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memedroid.db import Connection
from memedroid.errors import NotFound
from memedroid.repositories.queries import queries


@dataclass(frozen=True)
class Post:
    id: int
    caption: str
    created_at: datetime
    like_count: int
    view_count: int
    author_id: int
    author_username: str
    media_id: int
    status: str
    error: str | None
    kind: str | None
    mime: str | None
    width: int | None
    height: int | None
    duration_s: float | None
    path: str | None
    thumbnail_path: str | None
    blurhash: str | None
    tags: list[str]
    comment_count: int
    repost_of: dict[str, Any] | None  # the earliest post of the same or a near-duplicate media
    removed_at: datetime | None
    removed_reason: str | None
    listed: bool  # shown to everyone, in every listing: completed and not removed
    nsfw: bool  # listed only for readers who opted in
    author_deleted_at: datetime | None  # a removed post its author deleted: moderators alone see it

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def to_json(self, media_url: str, reposts: bool) -> dict[str, Any]:
        """The API representation; `media` is null until the media is completed, `repost_of`
        unless `reposts` are flagged."""
        media = None
        if self.completed:
            media = {
                "kind": self.kind,
                "url": f"{media_url}/{self.path}",
                "thumbnail_url": f"{media_url}/{self.thumbnail_path}",
                "width": self.width,
                "height": self.height,
                "duration_s": self.duration_s,
                "mime": self.mime,
                "blurhash": self.blurhash,
                "loop": self.kind == "animated",
            }
        return {
            "id": self.id,
            "status": self.status,
            "error": self.error,
            "caption": self.caption,
            "tags": self.tags,
            "author": {"id": self.author_id, "username": self.author_username},
            "created_at": self.created_at,  # ISO 8601 from either JSON encoder
            "media": media,
            "like_count": self.like_count,
            "view_count": self.view_count,
            "comment_count": self.comment_count,
            "repost_of": self.repost_of if reposts else None,
            "removed": None if self.removed_at is None else {"at": self.removed_at, "reason": self.removed_reason},
            "nsfw": self.nsfw,
        }


def insert(conn: Connection, author_id: int, media_id: int, caption: str, tags: list[str], nsfw: bool) -> int:
    row = queries.posts.insert_post(conn, author_id=author_id, media_id=media_id, caption=caption, nsfw=nsfw)
    post_id = int(row["id"])
    if tags:
        queries.posts.insert_tags(conn, names=tags)
        queries.posts.tag_post(conn, post_id=post_id, names=tags)
    return post_id


def get(conn: Connection, post_id: int) -> Post:
    row = queries.posts.get_post(conn, id=post_id)
    if row is None:
        raise NotFound(f"no post {post_id}")
    return Post(**row)


def by_ids(conn: Connection, post_ids: list[int]) -> dict[int, Post]:
    """The posts of `post_ids` that exist, by id."""
    return {row["id"]: Post(**row) for row in queries.posts.list_posts(conn, ids=post_ids)}


@dataclass(frozen=True)
class Visibility:
    """What decides who may see a post (a `Post` has it too)."""

    author_id: int
    listed: bool
    author_deleted_at: datetime | None


def visibility(conn: Connection, post_id: int) -> Visibility:
    row = queries.posts.get_post_visibility(conn, id=post_id)
    if row is None:
        raise NotFound(f"no post {post_id}")
    return Visibility(**row)


def status(conn: Connection, post_id: int) -> str | None:
    value: str | None = queries.posts.get_post_status(conn, id=post_id)
    return value


@dataclass(frozen=True)
class RemovedMedia:
    """A media row deleted with its last post: its files must go too."""

    id: int
    sha256: str  # hex: the name of its raw upload
    path: str | None
    thumbnail_path: str | None

    @property
    def files(self) -> list[str]:
        return [name for name in (self.path, self.thumbnail_path) if name]


def delete(conn: Connection, post_id: int, media_id: int) -> RemovedMedia | None:
    """Delete a post; when no other post shows its media, the media row too (returned, so its
    files can go)."""
    queries.posts.delete_post(conn, id=post_id)
    row = queries.posts.delete_unused_media(conn, id=media_id)
    return None if row is None else RemovedMedia(**row)


def delete_removed(conn: Connection, post_id: int) -> None:
    """The author's delete of a removed post: it stays, for moderators alone, until purged."""
    queries.posts.mark_author_deleted(conn, id=post_id)


def remove(conn: Connection, post_id: int, reason: str) -> bool:
    """Take a post out of every listing; False when it was removed already."""
    return queries.posts.remove_post(conn, id=post_id, reason=reason) is not None


def restore(conn: Connection, post_id: int) -> bool:
    """Bring a removed post back; False when it was not removed."""
    return queries.posts.restore_post(conn, id=post_id) is not None


def set_nsfw(conn: Connection, post_id: int, nsfw: bool) -> bool:
    """Mark a post NSFW or not; False when it was so already."""
    return queries.posts.set_post_nsfw(conn, id=post_id, nsfw=nsfw) is not None


def remove_showing(conn: Connection, media_id: int, reason: str) -> None:
    """Remove every post showing some media that is not removed yet (the media is banned)."""
    queries.posts.remove_media_posts(conn, media_id=media_id, reason=reason)


def remove_authored(conn: Connection, author_id: int, reason: str) -> None:
    """Remove every post of an author's that is not removed yet (a ban that hides content)."""
    queries.posts.remove_authored_posts(conn, author_id=author_id, reason=reason)


def restore_authored(conn: Connection, author_id: int) -> None:
    """Restore the posts `remove_authored` removed (the ban is lifted)."""
    queries.posts.restore_authored_posts(conn, author_id=author_id)


def purgeable(conn: Connection, removed_before: datetime) -> list[tuple[int, int]]:
    """The posts removed before a time (id, media id), but those a ban with an end hides."""
    return [(row["id"], row["media_id"]) for row in queries.posts.list_purgeable_posts(conn, removed_before=removed_before)]


def ids_by_media(conn: Connection, media_id: int) -> list[int]:
    return [row["id"] for row in queries.posts.list_post_ids_by_media(conn, media_id=media_id)]
