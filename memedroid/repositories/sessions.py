"""The login sessions repository: the revocable anchor of every token pair."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from memedroid.db import Connection
from memedroid.repositories.queries import queries


def open_session(conn: Connection, user_id: int, lifetime_seconds: int) -> UUID:
    row = queries.sessions.insert_session(conn, user_id=user_id, lifetime_seconds=lifetime_seconds)
    session_id: UUID = row["id"]
    return session_id


@dataclass(frozen=True)
class Standing:
    """What a token's session says about its caller, read on every signed-in request."""

    role: str
    open: bool  # the session exists for this user, is not revoked and has not expired
    banned: bool
    banned_until: datetime | None
    ban_reason: str | None
    show_nsfw: bool
    blocking: bool  # blocks anyone


def standing(conn: Connection, session_id: str, user_id: int) -> Standing | None:
    """The caller's standing under `session_id`; None when there is no such session for `user_id`."""
    row = queries.sessions.get_session_viewer(conn, id=session_id, user_id=user_id)
    return None if row is None else Standing(**row)


def revoke(conn: Connection, session_id: str) -> None:
    queries.sessions.revoke_session(conn, id=session_id)


def revoke_all(conn: Connection, user_id: int) -> None:
    """Revoke every open session of an account, and so all its tokens."""
    queries.sessions.revoke_user_sessions(conn, user_id=user_id)


def delete_expired(conn: Connection) -> int:
    """Forget sessions that can no longer be used; how many there were."""
    return int(queries.sessions.delete_expired_sessions(conn))
