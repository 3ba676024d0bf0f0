"""The HTTP server under the load production brings: slow clients, malformed requests that
never reach Flask, and many long-polls at once."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fixtures
import pytest
import requests
from system import System

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
