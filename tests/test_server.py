"""The HTTP server under the load production brings: slow clients, malformed requests that
never reach Flask, and many long-polls at once."""

from __future__ import annotations

import json
import random
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import fixtures
import psycopg
import pytest
import redis
import requests
from system import System

from memedroid.services.feeds import encode_cursor

pytestmark = pytest.mark.slow


def raw_request(system: System, data: bytes) -> tuple[bytes, bytes]:
    """Send `data` as it is; return the answer's head and body."""
    with socket.create_connection(("127.0.0.1", system.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def healthz_seconds(system: System) -> float:
    started = time.monotonic()
    assert requests.get(f"{system.url}/healthz", timeout=10).status_code == 200
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
        (b"BREW\x01 / HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_requests_gunicorn_cannot_parse_get_problem_details(start_system, request_bytes: bytes, status: int) -> None:
    system = start_system(WORKERS="1").wait_ready()
    head, body = raw_request(system, request_bytes)
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"\r\nContent-Type: application/problem+json" in head
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert f"\r\nX-Request-ID: {problem['request_id']}".encode() in head
    assert system.events("request", status=status, request_id=problem["request_id"])


def test_clients_trickling_their_headers_hold_no_thread(start_system) -> None:
    """Ten clients sending a byte a second (more than the worker's threads): /healthz still
    answers at once, and each trickler gets a 408 once HEADER_TIMEOUT has passed."""
    system = start_system(WORKERS="1", WEB_CONCURRENCY="1", WEB_THREADS="4", HEADER_TIMEOUT="5").wait_ready()
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"z" * 64 + b"\r\n\r\n"
    slow = [socket.create_connection(("127.0.0.1", system.port), timeout=10) for _ in range(10)]
    stop = threading.Event()

    def trickle() -> None:
        for byte in request[:-4]:
            for sock in slow:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return
            if stop.wait(1.0):
                return

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    time.sleep(2)
    assert max(healthz_seconds(system) for _ in range(5)) < 1
    answers = [sock.recv(4096) for sock in slow]
    stop.set()
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[0]
    assert b"application/problem+json" in answers[0]
    for sock in slow:
        sock.close()


def test_long_polls_cannot_take_every_thread(start_system, tmp_path: Path) -> None:
    """50 clients long-polling a pending post at once: /healthz stays under a second; at most
    half of each HTTP worker's threads wait, the other polls are answered at once."""
    system = start_system(WORKERS="1", WEB_CONCURRENCY="2", WEB_THREADS="4").wait_ready()  # the defaults
    auth = system.sign_up()
    worker = system.role("worker")[0]
    worker.send_signal(signal.SIGSTOP)  # the post stays pending
    try:
        post = system.upload(auth, fixtures.jpeg(tmp_path)).json()

        def poll() -> tuple[float, str]:
            started = time.monotonic()
            response = requests.get(f"{system.url}/api/v1/posts/{post['id']}?wait=20", headers=auth, timeout=60)
            return time.monotonic() - started, response.json()["status"]

        with ThreadPoolExecutor(50) as pool:
            polls = [pool.submit(poll) for _ in range(50)]
            time.sleep(1)
            assert max(healthz_seconds(system) for _ in range(5)) < 1
            answered = [future.result() for future in polls]
    finally:
        worker.send_signal(signal.SIGCONT)
    assert {status for _seconds, status in answered} == {"pending"}
    waited = [seconds for seconds, _status in answered if seconds > 10]
    assert 1 <= len(waited) <= 2 * 4 // 2  # at most half the threads of each of the 2 workers


def _seed_long_posts(database_url: str, count: int) -> tuple[datetime, datetime]:
    """`count` completed posts with 2,000-character captions, a second apart; their time span."""
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES ('loud', 'loud@example.com', 'x') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            """
            WITH m AS (
                INSERT INTO media (sha256, status, source_type, source_bytes, kind, mime, width, height, path, thumbnail_path)
                SELECT sha256(int8send(n)), 'completed', 'jpeg', 10, 'image', 'image/jpeg', 4, 3,
                       'ab/cd/' || n || '.jpg', 'ab/cd/' || n || '.thumb.jpg'
                FROM generate_series(1, %(count)s) AS n
                RETURNING id
            )
            INSERT INTO posts (author_id, media_id, caption, created_at)
            SELECT %(user_id)s, m.id, left(repeat('such meme, very caption ', 100), 2000),
                   now() - interval '1 day' + make_interval(secs => row_number() OVER (ORDER BY m.id))
            FROM m
            """,
            {"count": count, "user_id": user_id},
        )
        return conn.execute("SELECT min(created_at), max(created_at) FROM posts").fetchone()


def test_pages_behind_made_up_cursors_fill_no_cache(start_system, redis_url: str) -> None:
    """10,000 anonymous pages of 100 long posts, each behind a cursor nobody else asks for:
    no HTTP worker grows by more than 50 MB and Redis by no more than 100 MB."""
    system = start_system(
        WORKERS="1",
        WEB_CONCURRENCY="2",
        READ_RATE_LIMIT="100000/minute",
        FEED_LOCAL_SECONDS="1",  # many clients; both tiers
    ).wait_ready()
    oldest, newest = _seed_long_posts(system.env["DATABASE_URL"], 400)
    span = (newest - oldest).total_seconds()
    rng = random.Random(7)
    cursors = [
        encode_cursor(
            "new", [(oldest + timedelta(seconds=100 + rng.random() * (span - 99))).isoformat(), rng.randrange(1, 2**62)]
        )
        for _ in range(10_000)
    ]
    http = [p for master in system.role("http") for p in master.children()]
    store = redis.Redis.from_url(redis_url)

    def read(batch: list[str]) -> None:
        with requests.Session() as session:
            for cursor in batch:
                response = session.get(f"{system.url}/api/v1/posts", params={"cursor": cursor, "limit": 100}, timeout=30)
                assert response.status_code == 200 and len(response.json()["items"]) == 100

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(read, [cursors[n : n + 25] for n in range(0, 400, 25)]))  # warm up the allocators
        rss = [p.memory_info().rss for p in http]
        used = store.info("memory")["used_memory"]
        list(pool.map(read, [cursors[n : n + 100] for n in range(400, len(cursors), 100)]))
    growth = [(p.memory_info().rss - before) / 2**20 for p, before in zip(http, rss, strict=True)]
    assert max(growth) <= 50, growth
    assert (store.info("memory")["used_memory"] - used) / 2**20 <= 100
