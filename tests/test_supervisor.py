"""The supervisor as an operator runs it: a real process tree, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
from system import SUPERVISOR, System


def test_serves_then_stops_cleanly_on_sigterm(start_system) -> None:
    system = start_system(WORKERS="2").wait_ready()
    response = system.http.get(f"{system.url}/readyz", headers={"X-Request-ID": "supervised-1"})
    assert (response.status_code, response.json(), response.headers["X-Request-ID"]) == (200, {"status": "ready"}, "supervised-1")
    assert len(system.role("http")) >= 1 and len(system.role("worker")) == 2 and len(system.role("finalizer")) == 1

    tree = system.tree()
    assert system.stop(signal.SIGTERM) == 0
    assert system.events("request", request_id="supervised-1")
    assert {r["role"] for r in system.records()} >= {"supervisor", "http", "worker 1", "worker 2", "finalizer"}
    assert system.records()[-1]["event"] == "supervisor_stopped"
    _gone, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


def test_embedded_postgres_when_no_database_url(tmp_path: Path) -> None:
    system = System({"WORKERS": "1"}, tmp_path)
    try:
        system.wait_ready(timeout=120)
        assert system.stop(signal.SIGINT) == 0
        assert system.events("embedded_postgres_ready")
    finally:
        if system.process.poll() is None:
            system.kill_everything()


def test_a_dead_child_is_restarted(start_system) -> None:
    system = start_system(WORKERS="1").wait_ready()
    for role in ("http", "worker", "finalizer"):
        victim = system.role(role)[0] if role != "http" else _http_master(system)
        os.killpg(victim.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not system.events("child_died", pid=victim.pid):
            assert time.monotonic() < deadline, system.log()
            time.sleep(0.1)
        died = system.events("child_died", pid=victim.pid)[0]
        assert died["signal"] == "SIGKILL" and died["child"].startswith(role)
    system.wait_ready()
    deadline = time.monotonic() + 30
    while len(system.role("worker")) != 1 or len(system.role("finalizer")) != 1:
        assert time.monotonic() < deadline, system.log()
        time.sleep(0.1)
    assert system.stop() == 0


def _http_master(system: System) -> psutil.Process:
    return next(p for p in psutil.Process(system.process.pid).children() if "memedroid: http" in " ".join(p.cmdline()))


def test_a_child_failing_at_boot_halts_the_supervisor(start_system) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        system = start_system(HTTP_BIND=f"127.0.0.1:{port}", WORKERS="1")
        code = system.process.wait(60)
    assert code == 3
    assert system.events("child_boot_failed", child="http")
    assert not system.events("child_died")  # halted, not respawned


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


def test_a_bad_setting_is_one_clear_line(start_system) -> None:
    system = start_system(WORKERS="1", REDIS_URL="bogus://nowhere")
    assert system.process.wait(60) == 2
    assert "REDIS_URL='bogus://nowhere': must start with redis://" in system.log()
    assert "Traceback" not in system.log()
