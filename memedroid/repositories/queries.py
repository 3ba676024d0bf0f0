"""The SQL of `sql/queries/`, loaded once with aiosql: `queries.<file>.<name>(conn, ...)`.

Only repositories call it (an import-linter contract in `make lint` says so), and
`tests/test_queries.py` holds every call here against the names and parameters the `.sql`
files declare, so that a typo fails the tests, not production."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiosql

from memedroid.db import SQL_DIR

# One namespace per file: `queries.users.get_user_by_id(conn, id=...)`.
queries: Any = SimpleNamespace(
    **{path.stem: aiosql.from_path(path, "psycopg") for path in sorted((SQL_DIR / "queries").glob("*.sql"))}
)
