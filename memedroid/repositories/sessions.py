"""The login sessions repository: the revocable anchor of every token pair."""

from __future__ import annotations

from uuid import UUID

from memedroid.db import Connection
from memedroid.repositories.queries import queries


def open_session(conn: Connection, user_id: int, lifetime_seconds: int) -> UUID:
    row = queries.sessions.insert_session(conn, user_id=user_id, lifetime_seconds=lifetime_seconds)
    session_id: UUID = row["id"]
    return session_id


def role(conn: Connection, session_id: str, user_id: int) -> str | None:
    """The account's role while the session is open and belongs to `user_id`; else None."""
    found: str | None = queries.sessions.get_session_role(conn, id=session_id, user_id=user_id)
    return found


def revoke(conn: Connection, session_id: str) -> None:
    queries.sessions.revoke_session(conn, id=session_id)


def delete_expired(conn: Connection) -> int:
    """Forget sessions that can no longer be used; how many there were."""
    return int(queries.sessions.delete_expired_sessions(conn))
