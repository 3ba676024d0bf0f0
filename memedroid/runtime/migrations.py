"""Schema migrations: numbered plain-SQL files in `sql/migrations/` for the tables (applied in
order, once, recorded), then the definitions: each SQL function (with the triggers that run
it) in `sql/functions/`, each view in `sql/views/`, one file apiece, re-applied all together
whenever the text of one changes (Flyway's repeatable migrations). The live text of a view or
function is its file, the only copy in the tree.

Safe when several processes start at once: the whole run holds a PostgreSQL advisory lock,
and each file is applied in its own transaction together with its bookkeeping row (the
definitions in one).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from memedroid.db import SQL_DIR

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
DEFINITION_KINDS = ("functions", "views")  # folders of definitions, in the order they are made
LOCK_KEY = 0x6D656D65  # "meme": one advisory lock for every migrating process
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

# The runner's own bookkeeping is the one place SQL lives in Python: it must exist before
# any migration (or query file) can be trusted.
_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_definitions (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class SqlFile:
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Migration(SqlFile):
    version: int


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file, in version order. A misnamed or duplicate file is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match[1])
        if version in found:
            raise ValueError(f"two migrations share version {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(match[2], path, version)
    return [found[v] for v in sorted(found)]


@dataclass(frozen=True)
class Definition(SqlFile):
    kind: str  # "functions" or "views"


def definitions(root: Path = SQL_DIR) -> list[Definition]:
    """Every function and view file: the functions first (a view may call one), each kind by name."""
    return [Definition(path.stem, path, kind) for kind in DEFINITION_KINDS for path in sorted((root / kind).glob("*.sql"))]


def apply_definitions(conn: psycopg.Connection[tuple[object, ...]], found: list[Definition]) -> bool:
    """Re-make every view and function when the text of one has changed since they were last
    made (False: nothing changed), in one transaction: the views are dropped (with whatever
    depends on them) and made again, the functions replaced (their triggers with them).
    Function bodies are checked when they run, so functions may name each other in any order;
    a view or function that names a view (or returns its rows) waits for it. A function whose
    arguments or result change, or one no file defines any more, is dropped by a migration."""
    digest = hashlib.sha256(b"".join(f"{d.kind}/{d.name}\0{d.sql}\0".encode() for d in found)).hexdigest()
    row = conn.execute("SELECT checksum FROM schema_definitions").fetchone()
    if row is not None and row[0] == digest:
        return False
    with conn.transaction():
        conn.execute("SET LOCAL check_function_bodies = off")
        for view in (d for d in found if d.kind == "views"):
            conn.execute(sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(sql.Identifier(view.name)))
        pending = found
        while pending:
            waiting = []
            for definition in pending:
                try:
                    with conn.transaction():
                        conn.execute(definition.sql)
                except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject):
                    waiting.append(definition)  # it names a view (or its type) not made yet
            if len(waiting) == len(pending):
                conn.execute(waiting[0].sql)  # none can be made: say why
            pending = waiting
        conn.execute(
            "INSERT INTO schema_definitions (checksum) VALUES (%s) "
            "ON CONFLICT (only_row) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
            (digest,),
        )
    log.info("definitions applied", extra={"event": "definitions_applied", "definitions": len(found), "checksum": digest[:12]})
    return True


def migrate(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations, then the definitions if their text changed; return the
    migrations applied (empty when up to date)."""
    applied: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(_BOOKKEEPING)
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available(directory):
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info(
                    "migration applied",
                    extra={"event": "migration_applied", "version": migration.version, "migration": migration.name},
                )
                applied.append(migration)
            apply_definitions(conn, definitions(directory.parent))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied


def ensure_database(server_url: str, name: str, template: str | None = None) -> str:
    """Create database `name` on the server at `server_url` unless it exists (from `template`
    when given); return a URL for it."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(statement)
    return make_conninfo(server_url, dbname=name)
