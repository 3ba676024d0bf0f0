"""The operator command, run as an operator would: a subprocess with environment settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest

from memedroid.settings import Settings


def memedroid(settings: Settings, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "STORAGE_DIR": str(settings.storage_dir),
        "LOG_LEVEL": "WARNING",
        "BCRYPT_ROUNDS": "4",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "memedroid", *args], input=stdin, capture_output=True, text=True, env=environment, timeout=60
    )


def test_help_names_every_command_and_the_settings(settings: Settings) -> None:
    result = memedroid(settings, "--help")
    assert result.returncode == 0
    for command in (
        "migrate",
        "supervisor",
        "janitor",
        "reprocess",
        "remove-orphans",
        "rehash",
        "stats",
        "create-user",
        "migrate-storage",
    ):
        assert command in result.stdout
    assert "DATABASE_URL" in result.stdout and "JOB_TIMEOUT" in result.stdout
    assert memedroid(settings, "janitor", "--help").returncode == 0


def test_migrate_and_create_user(settings: Settings, client) -> None:
    assert memedroid(settings, "migrate").stdout.strip() == "database is up to date"
    created = memedroid(settings, "create-user", "opal", "opal@example.com", "--password-stdin", stdin="long enough pw\n")
    assert created.returncode == 0 and "created user opal" in created.stdout
    assert client.post("/api/v1/auth/login", json={"login": "opal", "password": "long enough pw"}).status_code == 200
    again = memedroid(settings, "create-user", "OPAL", "x@example.com", "--password-stdin", stdin="long enough pw\n")
    assert again.returncode == 1 and "username is already taken" in again.stderr
    short = memedroid(settings, "create-user", "zed", "zed@example.com", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "password must be at least 8 characters" in short.stderr


def test_stats_reprocess_and_orphans(settings: Settings) -> None:
    storage = settings.storage_dir
    (storage / "raw").mkdir(parents=True)
    with psycopg.connect(settings.database_url) as conn:
        user = conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES ('user1', 'u1@x.io', 'h') RETURNING id"
        ).fetchone()[0]
        sha = bytes(range(32))
        media = conn.execute(
            "INSERT INTO media (sha256, status, error, attempts, source_type, source_bytes, finished_at) "
            "VALUES (%s, 'failed', 'broken', 3, 'jpeg', 3, now()) RETURNING id",
            (sha,),
        ).fetchone()[0]
        post = conn.execute("INSERT INTO posts (author_id, media_id) VALUES (%s, %s) RETURNING id", (user, media)).fetchone()[0]
    stats = json.loads(memedroid(settings, "stats").stdout)
    assert stats["media"] == {"failed": 1} and stats["backlog"] == 0

    gone = memedroid(settings, "reprocess", str(post))
    assert gone.returncode == 1 and "no longer stored" in gone.stderr
    (storage / "raw" / sha.hex()).write_bytes(b"abc")
    assert memedroid(settings, "reprocess", "--failed").returncode == 0
    assert json.loads(memedroid(settings, "stats").stdout)["backlog"] == 1
    assert memedroid(settings, "reprocess", str(post)).returncode == 1  # no longer failed
    assert memedroid(settings, "reprocess", "999").returncode == 1

    orphan = storage / "raw" / ("f" * 64)
    orphan.write_bytes(b"nobody's")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    os.utime(storage / "raw" / sha.hex(), (old, old))
    dry = memedroid(settings, "remove-orphans", "--dry-run", ORPHAN_GRACE_SECONDS="60")
    assert dry.returncode == 0 and "orphan_raw_deleted=1" in dry.stdout and orphan.exists()
    real = memedroid(settings, "janitor", "--once", ORPHAN_GRACE_SECONDS="60")
    assert real.returncode == 0 and "orphan_raw_deleted=1" in real.stdout
    assert not orphan.exists() and (storage / "raw" / sha.hex()).exists()  # still needed by its job


@pytest.mark.parametrize(("env", "message"), [({"DATABASE_URL": ""}, "DATABASE_URL must be set"), ({"WORKERS": "x"}, "WORKERS")])
def test_clear_errors(settings: Settings, env: dict[str, str], message: str) -> None:
    result = memedroid(settings, "stats", **env)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [("supervisor",), ("janitor", "--once")])
def test_a_running_systems_janitor_refuses_too_short_a_grace(settings: Settings, command: tuple[str, ...]) -> None:
    result = memedroid(settings, *command, ORPHAN_GRACE_SECONDS="3", DB_TIMEOUT="5")
    assert result.returncode == 2 and "ORPHAN_GRACE_SECONDS=3 is too short for a running system: at least 10" in result.stderr
    assert "Traceback" not in result.stderr
    assert memedroid(settings, "remove-orphans", ORPHAN_GRACE_SECONDS="0").returncode == 0  # a stopped system's sweep
