"""PostgreSQL access: a pool per process, the one boundary where database errors become
MemeDroid errors, and where the SQL shipped with the package lies (`sql/` in the repository;
the queries are loaded by `repositories.queries`, the migrations run by `runtime.migrations`).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from memedroid.errors import Conflict, DatabaseBusy, ServiceUnavailable
from memedroid.settings import Settings

log = logging.getLogger(__name__)

SQL_DIR = Path(str(resources.files("memedroid") / "sql"))  # package data, editable install or not

Connection = psycopg.Connection[dict[str, Any]]

# Unique constraints a client can violate, and the request field each one is about.
CONFLICT_FIELDS = {
    "users_username_key": ("username", "username is already taken"),
    "users_email_key": ("email", "email is already registered"),
}


APPLICATION = "memedroid"  # the sessions' application_name, as pg_stat_activity shows it


class Database:
    """A connection pool for this process, opened lazily after fork (never at import time).

    Its sessions are bounded (unless `bounded` is off, for an operator's one-off command): a
    statement runs at most DB_STATEMENT_TIMEOUT and waits at most DB_LOCK_TIMEOUT for a lock,
    so a session of someone else's holding a lock (a migration, a DBA's `LOCK TABLE`) costs a
    request a 503 after that long, never a thread for as long as the lock is held. A lost
    server is reconnected to within DB_TIMEOUT of its return, and a connection the server
    closed meanwhile is never handed out."""

    def __init__(self, settings: Settings, bounded: bool = True) -> None:
        self.conninfo = settings.database_url
        self.size = settings.db_pool_size
        self.timeout = settings.db_timeout
        self.options = session_options(settings) if bounded else ""
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
            # psycopg_pool doubles its wait between attempts to reconnect (1, 2, 4 … s) for this
            # long, then gives up until a request asks for a connection, which starts afresh: a
            # short bound keeps the next attempt seconds, not minutes, after the server returns.
            reconnect_timeout=max(1.0, self.timeout),
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": max(1, round(self.timeout)),
                "application_name": APPLICATION,
                "options": self.options,
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
        with translate_errors(), self._connection() as conn, conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction of their own (one statement, or
        statements that need not agree): autocommit, so each is one round trip, without the
        BEGIN and COMMIT around it (the hot path's session check and likes)."""
        with self.session() as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """A connection in autocommit mode, for session-level state such as advisory locks."""
        with translate_errors(), self._connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.autocommit = False

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection of the pool the server has not closed meanwhile (a restart, a crash, an
        administrator's `pg_terminate_backend`): those are dropped, and the pool replaces them,
        instead of failing the request that would have used them. Told without a round trip:
        an idle session has nothing to read unless the server said goodbye."""
        pool = self.pool
        deadline = time.monotonic() + self.timeout
        while True:
            conn = pool.getconn(timeout=max(0.001, deadline - time.monotonic()))
            if not select.select([conn.fileno()], [], [], 0)[0]:
                break
            conn.close()
            pool.putconn(conn)
        try:
            yield conn
        finally:
            pool.putconn(conn)

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None


def session_options(settings: Settings) -> str:
    """The server settings every bounded session starts with (libpq's `options`). JIT is off:
    the application's statements are short, and a JIT compile costs ~20 ms where a plan's cost
    estimate is high (a generic plan's, say)."""
    return (
        f"-c statement_timeout={round(settings.db_statement_timeout * 1000)} "
        f"-c lock_timeout={round(settings.db_lock_timeout * 1000)} -c jit=off"
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn database failures into MemeDroid errors: the single boundary for psycopg errors. A
    statement or lock timeout, or a transaction PostgreSQL rolled back to break a deadlock, is
    busy-ness: a 503 the client may retry at once."""
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        field, message = CONFLICT_FIELDS.get(exc.diag.constraint_name or "", ("", "already exists"))
        extra = {"field": field} if field else {}
        raise Conflict(message, **extra) from exc
    except (
        pg_errors.QueryCanceled,
        pg_errors.LockNotAvailable,
        pg_errors.DeadlockDetected,
        pg_errors.SerializationFailure,
    ) as exc:
        log.warning("database busy", extra={"event": "database_busy", "error": str(exc).strip()})
        raise DatabaseBusy("the database is busy, try again shortly", retry_after=2) from exc
    except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as exc:
        log.warning("database unavailable", extra={"event": "database_unavailable", "error": str(exc)})
        raise ServiceUnavailable("the database is unavailable, try again shortly") from exc
