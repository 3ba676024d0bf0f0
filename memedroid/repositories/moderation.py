"""The moderation repository: roles and the moderation log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memedroid.db import Connection
from memedroid.repositories.queries import queries

ROLES = ("user", "moderator", "admin")  # as users.role's CHECK
MODERATORS = frozenset({"moderator", "admin"})


def set_role(conn: Connection, username: str, role: str) -> dict[str, Any] | None:
    """Give `username` a role; the account (id, username, role), or None when there is none."""
    found: dict[str, Any] | None = queries.moderation.set_role(conn, username=username, role=role)
    return found


def log(conn: Connection, moderator_id: int | None, action: str, target: tuple[str, int], reason: str = "") -> None:
    """Record an action on `target` (its type and id); a None moderator is the command line."""
    queries.moderation.insert_log(
        conn, moderator_id=moderator_id, action=action, target_type=target[0], target_id=target[1], reason=reason
    )


def entries(conn: Connection, before_id: int, limit: int, public: bool) -> list[dict[str, Any]]:
    """The log newest first, from before `before_id` (the `public` log without role grants)."""
    return list(queries.moderation.list_log(conn, before_id=before_id, page_size=limit, public=public))


def author_role(conn: Connection, target: tuple[str, int]) -> str | None:
    """The role of whom a post, a comment or an account belongs to (None: there is none)."""
    found: str | None = queries.moderation.get_author_role(conn, target_type=target[0], target_id=target[1])
    return found


def did(conn: Connection, action: str, target: tuple[str, int]) -> tuple[bool, int | None]:
    """Whether anyone did `action` to `target`, and who last did (None: the command line)."""
    row = queries.moderation.get_last_actor(conn, action=action, target_type=target[0], target_id=target[1])
    return (False, None) if row is None else (True, row["moderator_id"])


@dataclass(frozen=True)
class Account:
    """An account as moderation sees it."""

    id: int
    username: str
    role: str
    banned: bool  # a ban is in force


def account(conn: Connection, username: str) -> Account | None:
    row = queries.moderation.get_account(conn, username=username)
    return None if row is None else Account(**row)


def ban(conn: Connection, user_id: int, reason: str, until: datetime | None) -> None:
    """Ban an account for `reason`, until `until` (None: for good)."""
    queries.moderation.ban_user(conn, id=user_id, reason=reason, until=until)


def unban(conn: Connection, user_id: int) -> None:
    queries.moderation.unban_user(conn, id=user_id)


def ended_bans(conn: Connection) -> list[int]:
    """The accounts whose ban ran out and is still to be lifted."""
    return [row["id"] for row in queries.moderation.list_ended_bans(conn)]
