"""Small helpers shared by the tests."""

from __future__ import annotations

import functools
import logging
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from memedroid import logs
from memedroid.db import Database
from memedroid.pipeline.janitor import Janitor
from memedroid.settings import Settings
from memedroid.storage import open_storage

PASSWORD = "correct horse battery"
EVERYONE = {"show_nsfw": False, "viewer_id": 0}  # a listing query's reader: anonymous, blocking nobody


def metric(name: str, **labels: str) -> float:
    """A sample of this process's metrics (apps built in-process record here), 0 when absent."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def cache_lookups() -> tuple[float, float]:
    """Feed cache (hits, misses) so far in this process."""
    name = "memedroid_cache_lookups_total"
    return metric(name, cache="feed", result="hit"), metric(name, cache="feed", result="miss")


def only_our_handler(monkeypatch: pytest.MonkeyPatch, *others: logging.Handler) -> None:
    """The root logger's handlers as in a MemeDroid process (pytest adds its own), plus `others`."""
    ours = [handler for handler in logging.root.handlers if isinstance(handler, logs.JsonLines)]
    monkeypatch.setattr(logging.root, "handlers", [*ours, *others])


def clock_ahead(seconds: int | Path) -> dict[str, str]:
    """The environment that sets a process's wall clock (and its children's) `seconds` ahead
    (negative: behind), or as many as a file says, read again every second; the monotonic
    clock is left alone, as a node with a wrong time of day has it (tests/clockshift.c)."""
    shift = {"CLOCK_SHIFT_FILE": str(seconds)} if isinstance(seconds, Path) else {"CLOCK_SHIFT": str(seconds)}
    return {"LD_PRELOAD": str(_clockshift()), **shift}


@functools.cache
def _clockshift() -> Path:
    """tests/clockshift.c, built once per test run."""
    library = Path(tempfile.mkdtemp(prefix="clockshift-")) / "clockshift.so"
    source = Path(__file__).with_name("clockshift.c")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def refusing_writes(url: str, how: str = "oom") -> Callable[[], None]:
    """Make the Redis at `url` refuse writes (`oom`: memory full under noeviction; `readonly`:
    a replica of a master that is away); return what makes it take them again."""
    server = redis.Redis.from_url(url)
    if how == "oom":
        server.config_set("maxmemory-policy", "noeviction")
        server.config_set("maxmemory", 1)
        return lambda: server.config_set("maxmemory", 0)
    server.replicaof("127.0.0.1", free_port())
    return lambda: server.replicaof("NO", "ONE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Any, timeout: float = 60, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def register(client: FlaskClient, username: str = "alice", email: str | None = None, password: str = PASSWORD) -> Any:
    return client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": email or f"{username.lower()}@example.com", "password": password},
    )


def login(client: FlaskClient, login: str = "alice", password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"login": login, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed_up(client: FlaskClient, username: str = "alice") -> dict[str, Any]:
    """Register and log in `username`; return the login response body."""
    assert register(client, username).status_code == 201
    response = login(client, username)
    assert response.status_code == 200
    return dict(response.get_json())


def grant(database_url: str, username: str, role: str = "moderator") -> None:
    """Give an account a role, as `memedroid grant-role` does (without the moderation log)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE users SET role = %s WHERE username = %s", (role, username))


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """Assert `response` is an RFC 9457 problem with `status`; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return dict(body)


# Roles for supervisor tests (spawned children import them from here).
def never_ready(_settings: Any, _ready: Any) -> None:
    """A child that never finishes booting."""
    time.sleep(3600)


def exits_at_boot(_settings: Any, _ready: Any) -> None:
    """A child that fails before it has booted."""
    raise SystemExit(1)


def seed(
    database_url: str,
    count: int = 0,
    author: str = "alice",
    tags: tuple[str, ...] = (),
    status: str = "completed",
    hours: Sequence[float] = (),
    likes: Sequence[int] = (),
) -> list[int]:
    """`count` posts of `author` with completed (or `status`) media, one second apart a month
    ago, newest last; or, for each of `hours`, a post that many hours old (with as many
    likes as `likes` says, the counter only), in that order. Returns their ids."""
    hours = [None if h is None else float(h) for h in hours] or [None] * count
    likes = list(likes) or [0] * len(hours)
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES (%s, %s, 'x') "
            "ON CONFLICT (lower(username)) DO UPDATE SET username = excluded.username RETURNING id",
            (author, f"{author}@example.com"),
        ).fetchone()[0]
        ids = conn.execute(
            """
            WITH a AS (
                SELECT * FROM unnest(%(hours)s::float8[], %(likes)s::int[]) WITH ORDINALITY AS a (hours, likes, n)
            ), m AS (
                INSERT INTO media (sha256, status, error, source_type, source_bytes, kind, mime, width, height, path, thumbnail_path)
                SELECT sha256(convert_to(%(author)s || %(status)s || n || clock_timestamp(), 'UTF8')), %(status)s,
                       CASE WHEN %(status)s = 'failed' THEN 'bad' END, 'jpeg', 10, 'image', 'image/jpeg', 4, 3,
                       'ab/cd/' || n || '.jpg', 'ab/cd/' || n || '.thumb.jpg'
                FROM a
                RETURNING id
            ), numbered AS (
                SELECT id, row_number() OVER (ORDER BY id) AS n FROM m
            )
            INSERT INTO posts (author_id, media_id, caption, like_count, created_at)
            SELECT %(user_id)s, numbered.id, 'post ' || numbered.id, a.likes,
                   coalesce(now() - make_interval(secs => a.hours * 3600),
                            coalesce((SELECT max(created_at) FROM posts), now() - interval '30 days')
                                + make_interval(secs => a.n))
            FROM numbered JOIN a USING (n)
            RETURNING id
            """,
            {"author": author, "status": status, "hours": hours, "likes": likes, "user_id": user_id},
        ).fetchall()
        post_ids = sorted(i for (i,) in ids)
        for tag in tags:
            conn.execute("INSERT INTO tags (name) VALUES (%s) ON CONFLICT DO NOTHING", (tag,))
            conn.execute(
                "INSERT INTO post_tags (post_id, tag_id, created_at, like_count) SELECT p.id, t.id, p.created_at, p.like_count "
                "FROM posts p, tags t WHERE p.id = ANY(%s) AND t.name = %s",
                (post_ids, tag),
            )
    return post_ids


def walk(
    client: FlaskClient, query: str = "", limit: int = 20, between_pages: Any = None, cursor: str | None = None, **kw: Any
) -> list[int]:
    """The ids of a feed walked page by page to its end (from `cursor`, or its start)."""
    seen: list[int] = []
    while True:
        url = f"/api/v1/posts?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, **kw)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if between_pages:
            between_pages()


def rerank(settings: Settings) -> dict[str, int]:
    """One janitor tick that recomputes the hot ranks however recent they are; what it did."""
    settings = settings.replace(hot_rank_interval=0)
    db = Database(settings)
    try:
        return dict(Janitor(settings, db, open_storage(settings), None, "test/boot").tick())
    finally:
        db.close()
