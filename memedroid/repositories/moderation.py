"""The moderation repository: roles and the moderation log."""

from __future__ import annotations

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


def entries(conn: Connection, before_id: int, limit: int) -> list[dict[str, Any]]:
    """The log newest first, from before `before_id`."""
    return list(queries.moderation.list_log(conn, before_id=before_id, page_size=limit))
