"""The users repository: accounts as frozen dataclasses over `sql/queries/users.sql`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from memedroid.db import Connection
from memedroid.errors import NotFound
from memedroid.repositories.queries import queries


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    password_hash: str
    created_at: datetime
    banned: bool = False  # a ban is in force (read where it matters: at login)
    banned_until: datetime | None = None  # None: for good
    ban_reason: str | None = None

    def public(self) -> dict[str, Any]:
        """What anyone may see of this account."""
        return {"id": self.id, "username": self.username, "created_at": self.created_at.isoformat()}

    def private(self) -> dict[str, Any]:
        """What the account's owner sees (never the password hash)."""
        return {**self.public(), "email": self.email}


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
    return queries.users.get_user_by_username(conn, username=username) is not None
