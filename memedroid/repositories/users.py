"""The users repository: accounts as frozen dataclasses over `sql/queries/users.sql`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from memedroid.db import Connection
from memedroid.errors import NotFound
from memedroid.repositories.moderation import MODERATORS
from memedroid.repositories.queries import queries


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    password_hash: str
    created_at: datetime
    show_nsfw: bool = False  # opted in to NSFW posts (read where it matters: the account's own view)
    banned: bool = False  # a ban is in force (read where it matters: at login)
    banned_until: datetime | None = None  # None: for good
    ban_reason: str | None = None
    role: str = "user"  # user, moderator or admin (read where it matters: the account's own view)

    def public(self) -> dict[str, Any]:
        """What anyone may see of this account."""
        return {"id": self.id, "username": self.username, "created_at": self.created_at.isoformat()}

    def private(self) -> dict[str, Any]:
        """What the account's owner sees (never the password hash)."""
        return {**self.public(), "email": self.email, "show_nsfw": self.show_nsfw, "role": self.role}


def insert(conn: Connection, username: str, email: str, password_hash: str) -> User:
    return User(**queries.users.insert_user(conn, username=username, email=email, password_hash=password_hash))


def get(conn: Connection, user_id: int) -> User:
    row = queries.users.get_user_by_id(conn, id=user_id)
    if row is None:
        raise NotFound("no such user")
    return User(**row)


def find_by_login(conn: Connection, login: str) -> User | None:
    row = queries.users.get_user_by_login(conn, login=login)
    return None if row is None else User(**row)


@dataclass(frozen=True)
class Profile:
    """What anyone may see of an account, with the totals of its completed posts and comments."""

    id: int
    username: str
    created_at: datetime
    post_count: int
    like_count: int
    comment_count: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}


def profile(conn: Connection, username: str) -> Profile:
    """The public profile of `username`; `NotFound` when there is no such user."""
    row = queries.users.get_profile(conn, username=username)
    if row is None:
        raise NotFound(f"no user named {username!r}")
    return Profile(**row)


def exists(conn: Connection, username: str) -> bool:
    return find(conn, username) is not None


def find(conn: Connection, username: str) -> User | None:
    row = queries.users.get_user_by_username(conn, username=username)
    return None if row is None else User(**row)


def set_show_nsfw(conn: Connection, user_id: int, show: bool) -> None:
    queries.users.set_show_nsfw(conn, id=user_id, show_nsfw=show)


def set_block(conn: Connection, blocker_id: int, blocked_id: int, blocked: bool) -> None:
    """Block or unblock an account (idempotent)."""
    change = queries.users.insert_block if blocked else queries.users.delete_block
    change(conn, blocker_id=blocker_id, blocked_id=blocked_id)


def blocked_among(conn: Connection, blocker_id: int, user_ids: list[int]) -> set[int]:
    """Which of `user_ids` the account `blocker_id` blocks."""
    return {row["blocked_id"] for row in queries.users.list_blocked_among(conn, blocker_id=blocker_id, user_ids=user_ids)}


def blocks(conn: Connection, blocker_id: int, after_id: int, limit: int) -> list[dict[str, Any]]:
    """The accounts `blocker_id` blocks (`id`, `username`, `blocked_at`), by id after `after_id`."""
    return list(queries.users.list_blocks(conn, blocker_id=blocker_id, after_id=after_id, page_size=limit))


@dataclass(frozen=True)
class Viewer:
    """Who reads: nobody signed in (`id` None), or an account as its token's session check
    read it on this request: its role and what its listings show."""

    id: int | None = None
    role: str = "user"
    show_nsfw: bool = False
    blocking: bool = False  # blocks someone: its listings are filtered for it alone

    @property
    def moderator(self) -> bool:
        return self.role in MODERATORS

    @property
    def audience(self) -> str:
        """Which shared pages it may read: `nsfw` (opted in) or `sfw`; the two never mix."""
        return "nsfw" if self.show_nsfw else "sfw"

    @property
    def blocker_id(self) -> int:
        """The id whose blocks filter its listings; 0 (nobody's) when it blocks nobody."""
        return self.id if self.blocking and self.id is not None else 0


ANONYMOUS = Viewer()
