"""Probes of the database itself, and the advisory locks that let one process act alone."""

from __future__ import annotations

from memedroid.db import Connection
from memedroid.repositories.queries import queries


def ping(conn: Connection) -> None:
    """Proves the database answers (raises otherwise)."""
    queries.health.ping(conn)


def try_lock(conn: Connection, key: int) -> bool:
    """Take the session advisory lock `key` unless another session holds it."""
    return bool(queries.janitor.try_lock_janitor(conn, lock_key=key))


def unlock(conn: Connection, key: int) -> None:
    queries.janitor.unlock_janitor(conn, lock_key=key)
