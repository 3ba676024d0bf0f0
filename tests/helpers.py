"""Small helpers shared by the tests."""

from __future__ import annotations

import socket
import time
from typing import Any

from flask.testing import FlaskClient
from prometheus_client import REGISTRY

PASSWORD = "correct horse battery"


def metric(name: str, **labels: str) -> float:
    """A sample of this process's metrics (apps built in-process record here), 0 when absent."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def cache_lookups() -> tuple[float, float]:
    """Feed cache (hits, misses) so far in this process."""
    name = "memedroid_cache_lookups_total"
    return metric(name, cache="feed", result="hit"), metric(name, cache="feed", result="miss")


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
