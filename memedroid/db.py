"""PostgreSQL access: a pool per process, the one boundary where database errors become
MemeDroid errors, and where the SQL shipped with the package lies (`sql/` in the repository;
the queries are loaded by `repositories.queries`, the migrations run by `runtime.migrations`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from memedroid.errors import Conflict, ServiceUnavailable
from memedroid.settings import Settings

log = logging.getLogger(__name__)

SQL_DIR = Path(str(resources.files("memedroid") / "sql"))  # package data, editable install or not

Connection = psycopg.Connection[dict[str, Any]]

# Unique constraints a client can violate, and the request field each one is about.
CONFLICT_FIELDS = {
    "users_username_key": ("username", "username is already taken"),
    "users_email_key": ("email", "email is already registered"),
}


class Database:
    """A connection pool for this process, opened lazily after fork (never at import time)."""

    def __init__(self, settings: Settings) -> None:
        self.conninfo = settings.database_url
        self.size = settings.db_pool_size
        self.timeout = settings.db_timeout
        self._pool: psycopg_pool.ConnectionPool[Connection] | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def pool(self) -> psycopg_pool.ConnectionPool[Connection]:
        if self._pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    self._pool = self._open_pool()
                    self._pid = os.getpid()
        return self._pool

    def _open_pool(self) -> psycopg_pool.ConnectionPool[Connection]:
        pool: psycopg_pool.ConnectionPool[Connection] = psycopg_pool.ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.size,
            timeout=self.timeout,
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": max(1, round(self.timeout)),
            },
            open=False,
            name=f"memedroid-{os.getpid()}",
        )
        # wait=False: a process may start while the database is down; requests then get 503.
        pool.open(wait=False)
        return pool

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with translate_errors(), self.pool.connection() as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """A connection in autocommit mode, for session-level state such as advisory locks."""
        with translate_errors(), self.pool.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.autocommit = False

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn database failures into MemeDroid errors: the single boundary for psycopg errors."""
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        field, message = CONFLICT_FIELDS.get(exc.diag.constraint_name or "", ("", "already exists"))
        extra = {"field": field} if field else {}
        raise Conflict(message, **extra) from exc
    except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as exc:
        log.warning("database unavailable", extra={"event": "database_unavailable", "error": str(exc)})
        raise ServiceUnavailable("the database is unavailable, try again shortly") from exc
