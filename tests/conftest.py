"""Shared fixtures: a real PostgreSQL (embedded unless TEST_DATABASE_URL is set) with a freshly
migrated database per test cloned from a template, a real throwaway Redis (unless
TEST_REDIS_URL is set), settings, the app and its client."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from disks import CannotMount, SmallDisk
from flask import Flask
from flask.testing import FlaskClient
from helpers import free_port, wait_for_port
from psycopg import sql
from stores import Store, s3, s3_server
from system import System

from memedroid.api.app import create_app
from memedroid.runtime import migrations
from memedroid.runtime.embedded import EmbeddedPostgres
from memedroid.settings import ENV, Settings

# A developer's shell must not leak into the tests (subprocesses inherit os.environ).
for _var in ENV.values():
    os.environ.pop(_var, None)

TEST_SECRET = "test-secret-" + "s" * 60


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test (`item.rep_call`): fixtures that clean up after it
    can tell whether it failed (the browser tests keep screenshots then)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of the PostgreSQL server the tests use."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "pgdata", cleanup="delete")
    yield server.start("postgres")
    server.stop()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """Name of a database migrated once per session; each test gets a copy of it."""
    name = f"memedroid_template_{uuid.uuid4().hex[:8]}"
    migrations.migrate(migrations.ensure_database(pg_server_url, name))
    yield name
    drop_database(pg_server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    name = f"memedroid_test_{uuid.uuid4().hex[:12]}"
    url = migrations.ensure_database(pg_server_url, name, template=template_db)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A database with nothing in it, not even migrations."""
    name = f"memedroid_empty_{uuid.uuid4().hex[:12]}"
    url = migrations.ensure_database(pg_server_url, name)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis: a throwaway redis-server on a free port unless TEST_REDIS_URL is set."""
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


# The object store the tests use speaks S3 over HTTP on 127.0.0.1 (moto's server); boto3 signs
# with these made-up keys, in this process and in every supervisor it starts.
os.environ.update(AWS_ACCESS_KEY_ID="memedroid-test", AWS_SECRET_ACCESS_KEY="memedroid-test-secret")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The address of a real S3 protocol server (moto's), for the whole session."""
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new empty bucket of this test's own."""
    name = f"memedroid-{uuid.uuid4().hex[:12]}"
    s3(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Store:
    """Where the system under test keeps its files: the local disk, unless a test runs on
    `both_stores` (then also a bucket of its own on the S3 protocol server)."""
    if getattr(request, "param", "local") == "local":
        return Store()
    return Store.bucket(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("bucket"))


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    redis.Redis.from_url(redis_url).flushdb()  # no cached page of another test's database
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        storage_dir=tmp_path / "storage",
        var_dir=tmp_path / "var",
        jwt_secret_key=TEST_SECRET,
        bcrypt_rounds=4,
        db_timeout=2.0,
        login_rate_limit="1000/minute",  # tests/test_limits.py checks the real limits
        login_name_rate_limit="1000/minute",
        upload_rate_limit="1000/hour",
        feed_local_seconds=0,  # invalidation is seen at once; tests/test_feeds.py tests the local tier
        disk_reserve_bytes=8 << 20,  # the machine's disk may be small; tests/test_disks.py fills disks of its own
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    app.extensions["memedroid"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., FlaskClient]]:
    """A client of another app on the same database, with some settings changed."""
    apps: list[Flask] = []

    def make(**changes: object) -> FlaskClient:
        apps.append(create_app(settings.replace(**changes)))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["memedroid"].close()


@pytest.fixture
def start_system(tmp_path: Path, database_url: str, redis_url: str, store: Store) -> Iterator[Callable[..., System]]:
    """Start the real supervisor (HTTP, workers, finalizer, janitor) on this test's database
    and store."""
    redis.Redis.from_url(redis_url).flushdb()
    started: list[System] = []

    def start(**env: str) -> System:
        system = System({"DATABASE_URL": database_url, "REDIS_URL": redis_url, **store.env, **env}, tmp_path)
        started.append(system)
        return system

    yield start
    for system in started:
        if system.process.poll() is None:
            system.kill_everything()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., SmallDisk | None]]:
    """Mount a tmpfs of some size at `tmp_path/<name>` (request this fixture before
    `start_system`, so that the system is stopped before its disk goes). Where no disk can be
    mounted (not root), the test is skipped, or with `required=False` gets None."""
    mounted: list[SmallDisk] = []

    def mount(name: str, size: int, required: bool = True) -> SmallDisk | None:
        try:
            mounted.append(SmallDisk(tmp_path / name, size))
        except CannotMount as exc:
            if required:
                pytest.skip(str(exc))
            return None
        return mounted[-1]

    yield mount
    for disk in reversed(mounted):
        disk.unmount()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many statements this process has sent so far: a spy on psycopg's cursor, which
    still sends every one of them (an N+1 shows up as a count that grows with the page)."""
    sent = [0]
    execute = psycopg.Cursor.execute

    def counted(cursor: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return execute(cursor, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    return lambda: sent[0]
