"""The login sessions repository: the revocable anchor of every token pair."""

from __future__ import annotations

from uuid import UUID

from memedroid.db import Connection
from memedroid.repositories.queries import queries


def open_session(conn: Connection, user_id: int, lifetime_seconds: int) -> UUID:
    row = queries.sessions.insert_session(conn, user_id=user_id, lifetime_seconds=lifetime_seconds)
    session_id: UUID = row["id"]
    return session_id


def is_active(conn: Connection, session_id: str, user_id: int) -> bool:
    return bool(queries.sessions.is_session_active(conn, id=session_id, user_id=user_id))


def revoke(conn: Connection, session_id: str) -> None:
    queries.sessions.revoke_session(conn, id=session_id)


def delete_expired(conn: Connection) -> int:
    """Forget sessions that can no longer be used; how many there were."""
    return int(queries.sessions.delete_expired_sessions(conn))
