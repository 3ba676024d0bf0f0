"""The schema: migrations from zero, idempotence, concurrent starts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from memedroid.runtime import migrations

ROOT = Path(__file__).resolve().parent.parent


def _schema(url: str) -> dict[str, list[str]]:
    """Tables with their columns, plus the index names, as PostgreSQL reports them."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall()
    schema: dict[str, list[str]] = {}
    for table, column in columns:
        schema.setdefault(table, []).append(column)
    schema["<indexes>"] = [name for (name,) in indexes]
    return schema


def test_migrations_from_zero_build_the_schema_and_rerun_is_a_noop(empty_database_url: str) -> None:
    applied = migrations.migrate(empty_database_url)
    assert [m.version for m in applied] == [m.version for m in migrations.available()]
    schema = _schema(empty_database_url)
    assert set(schema) >= {"users", "auth_sessions", "media", "posts", "tags", "post_tags", "likes", "schema_migrations"}
    assert {"sha256", "status", "error", "attempts", "lease_token", "heartbeat_at", "kind", "request_id"} <= set(schema["media"])
    assert {"users_username_key", "users_email_key", "posts_created_at_id_idx", "post_tags_tag_feed_idx"} <= set(
        schema["<indexes>"]
    )

    assert migrations.migrate(empty_database_url) == []
    assert _schema(empty_database_url) == schema


def test_concurrent_migrators_apply_each_file_once(empty_database_url: str) -> None:
    errors: list[BaseException] = []
    results: list[list[migrations.Migration]] = []

    def run() -> None:
        try:
            results.append(migrations.migrate(empty_database_url))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, 0, len(migrations.available())]
    with psycopg.connect(empty_database_url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in migrations.available()]


def test_case_insensitive_uniqueness_is_enforced_by_the_database(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO users (username, email, password_hash) VALUES ('Bob', 'b@x.io', 'h')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO users (username, email, password_hash) VALUES ('bOB', 'c@x.io', 'h')")


def test_misnamed_migration_is_refused(tmp_path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "2_bad name.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNNN_name.sql"):
        migrations.available(tmp_path)


@pytest.mark.slow
def test_a_regular_install_carries_its_sql_and_migrates(tmp_path: Path, empty_database_url: str) -> None:
    """Installed for real (not editable), the package finds `sql/` and ImageMagick's policy
    as package data, wherever it runs from."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    code = "import sys, memedroid; print(memedroid.__file__); from memedroid.cli import main; sys.exit(main(['migrate']))"
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": empty_database_url}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(site / "memedroid")) and "database is up to date" in result.stdout
    assert (site / "memedroid" / "pipeline" / "processing" / "policy.xml").is_file()
    with psycopg.connect(empty_database_url) as conn:
        versions = [version for (version,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in migrations.available()]


def test_a_view_or_function_is_its_one_file_and_is_made_again_when_that_file_changes(
    empty_database_url: str, tmp_path: Path
) -> None:
    """A view written out whole in five migrations left a DBA guessing which copy was live:
    each view and function now lives in one file, re-made when the file's text changes."""
    tree = tmp_path / "sql"
    shutil.copytree(ROOT / "sql", tree)
    migrations.migrate(empty_database_url, tree / "migrations")
    for kind in migrations.DEFINITION_KINDS:  # no migration restates a definition
        for definition in (tree / kind).glob("*.sql"):
            statement = re.compile(rf"CREATE (OR REPLACE )?(VIEW|FUNCTION) {definition.stem}\b", re.I)
            assert not [m.name for m in (tree / "migrations").glob("*.sql") if statement.search(m.read_text())], definition

    def columns(view: str) -> list[str]:
        with psycopg.connect(empty_database_url) as conn:
            query = "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position"
            return [name for (name,) in conn.execute(query, (view,))]

    # A DBA edits a view another view's file depends on (and which sorts after it), and adds a function.
    post_details = tree / "views" / "post_details.sql"
    post_details.write_text(
        post_details.read_text().replace("    p.caption,\n", "    p.caption,\n    length(p.caption) AS caption_length,\n")
    )
    (tree / "views" / "a_first_view.sql").write_text(
        "CREATE VIEW a_first_view AS\nSELECT id, caption_length FROM post_details;\n"
    )
    (tree / "functions" / "twice.sql").write_text(
        "CREATE OR REPLACE FUNCTION twice(n integer) RETURNS integer\nLANGUAGE sql\nAS $$ SELECT n * 2 $$;\n"
    )
    assert migrations.migrate(empty_database_url, tree / "migrations") == []
    assert "caption_length" in columns("post_details") and columns("a_first_view") == ["id", "caption_length"]
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT twice(21)").fetchone() == (42,)
        made = conn.execute("SELECT applied_at FROM schema_definitions").fetchone()
    migrations.migrate(empty_database_url, tree / "migrations")  # nothing changed: nothing made again
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT applied_at FROM schema_definitions").fetchone() == made
