"""The supervisor as an operator runs it: a real process tree, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
SUPERVISOR = ROOT / "bin" / "memedroid-supervisor"


class Running:
    """`bin/memedroid-supervisor` in a subprocess, its JSON log collected from stdout."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "supervisor.log"
        full_env = {
            **os.environ,
            "HTTP_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": "1",
            "BCRYPT_ROUNDS": "4",
            "VAR_DIR": str(tmp_path / "var"),
            "STORAGE_DIR": str(tmp_path / "storage"),
            **env,
        }
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SUPERVISOR)], env=full_env, stdout=log, stderr=subprocess.STDOUT
            )

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.2)
        raise TimeoutError(self.log_path.read_text())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def records(self) -> list[dict]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


@pytest.fixture
def run_supervisor(tmp_path: Path) -> Iterator:
    started: list[Running] = []

    def start(**env: str) -> Running:
        running = Running(env, tmp_path)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            tree = running.children()
            running.process.kill()
            for child in tree:
                child.kill()


def test_serves_then_stops_cleanly_on_sigterm(run_supervisor, database_url: str) -> None:
    running = run_supervisor(DATABASE_URL=database_url)
    running.wait_ready()
    status, headers, body = running.get("/readyz", {"X-Request-ID": "supervised-1"})
    assert (status, body, headers["X-Request-ID"]) == (200, {"status": "ready"}, "supervised-1")
    titles = {" ".join(p.cmdline()) for p in running.children()}
    assert any("memedroid: http" in title for title in titles), titles

    tree = running.children()
    assert running.stop(signal.SIGTERM) == 0
    records = running.records()
    assert any(r.get("request_id") == "supervised-1" and r.get("event") == "request" for r in records)
    assert {r["role"] for r in records} >= {"supervisor", "http"}
    assert records[-1]["event"] == "supervisor_stopped"
    _gone, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


def test_embedded_postgres_when_no_database_url(run_supervisor) -> None:
    running = run_supervisor()
    running.wait_ready(timeout=120)
    assert running.stop(signal.SIGINT) == 0
    assert any(r.get("event") == "embedded_postgres_ready" for r in running.records())


def test_a_dead_child_is_restarted(run_supervisor, database_url: str) -> None:
    running = run_supervisor(DATABASE_URL=database_url)
    running.wait_ready()
    http_master = next(p for p in psutil.Process(running.process.pid).children() if "http" in " ".join(p.cmdline()))
    os.killpg(http_master.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not any(r.get("event") == "child_died" for r in running.records()):
        assert time.monotonic() < deadline, running.log_path.read_text()
        time.sleep(0.2)
    running.wait_ready()
    died = next(r for r in running.records() if r.get("event") == "child_died")
    assert died["signal"] == "SIGKILL" and died["child"] == "http"
    assert running.stop() == 0


def test_a_child_failing_at_boot_halts_the_supervisor(run_supervisor, database_url: str) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = run_supervisor(DATABASE_URL=database_url, HTTP_BIND=f"127.0.0.1:{port}")
        code = running.process.wait(60)
    assert code == 3
    assert any(r.get("event") == "child_boot_failed" for r in running.records())


def test_production_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SUPERVISOR)],
        env={**os.environ, "MEMEDROID_ENV": "production", "VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "JWT_SECRET_KEY must be set" in result.stderr
    assert "Traceback" not in result.stderr
