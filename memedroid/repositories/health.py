"""Probes of the database itself, and the advisory locks that let one process act alone."""

from __future__ import annotations

from dataclasses import dataclass

from memedroid.db import Connection
from memedroid.repositories.queries import queries


@dataclass(frozen=True)
class Readiness:
    clock: float  # the database's clock, epoch seconds
    stuck: int  # sessions of the running system waiting on a lock for too long
    blockers: list[int]  # the backends holding those locks


def readiness(conn: Connection, stuck_seconds: float) -> Readiness:
    """The database answers: its clock, and whether requests are stuck on locks."""
    row = queries.health.readiness(conn, stuck_seconds=stuck_seconds)
    return Readiness(float(row["clock"]), int(row["stuck"]), sorted(row["blockers"]))


def clock(conn: Connection) -> float:
    """The database's clock, epoch seconds."""
    return float(queries.health.clock(conn))


def try_lock(conn: Connection, key: int) -> bool:
    """Take the session advisory lock `key` unless another session holds it."""
    return bool(queries.janitor.try_lock_janitor(conn, lock_key=key))


def unlock(conn: Connection, key: int) -> None:
    queries.janitor.unlock_janitor(conn, lock_key=key)
