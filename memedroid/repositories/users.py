"""The users repository: accounts as frozen dataclasses over `sql/queries/users.sql`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memedroid.db import Connection, queries
from memedroid.errors import NotFound


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    password_hash: str
    created_at: datetime

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


def profile(conn: Connection, username: str) -> dict[str, Any]:
    """The public profile of `username`: id, name, join date, post and like totals."""
    row = queries.users.get_profile(conn, username=username)
    if row is None:
        raise NotFound(f"no user named {username!r}")
    return {**row, "created_at": row["created_at"].isoformat()}
