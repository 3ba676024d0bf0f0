"""The supervisor as an operator runs it: a real process tree, real signals."""

from __future__ import annotations

import json
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


ROLE_SUPERVISOR = """
import sys
sys.path.insert(0, {tests!r})
import helpers
from memedroid import logs
from memedroid.settings import Settings
from memedroid.runtime.supervisor import Role, Supervisor

if __name__ == "__main__":
    logs.configure("INFO", role="supervisor")
    role = Role("lone", "test", helpers.{target})
    sys.exit(Supervisor(Settings(env="test", jwt_secret_key="x" * 40), [role]).run())
"""


def supervise(tmp_path: Path, target: str) -> subprocess.Popen[str]:
    script = tmp_path / f"{target}.py"
    script.write_text(ROLE_SUPERVISOR.format(tests=str(Path(__file__).parent), target=target))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _started_pids(process: subprocess.Popen[str], count: int) -> list[int]:
    pids: list[int] = []
    assert process.stdout is not None
    while len(pids) < count:
        line = process.stdout.readline()
        assert line, "the supervisor stopped early"
        if '"child_started"' in line:
            pids.append(json.loads(line)["pid"])
    return pids


def test_a_child_killed_while_booting_is_started_again_until_it_keeps_dying(tmp_path: Path) -> None:
    """A signal before boot is a kill from outside (an operator, the OOM killer), not a boot
    failure: the child starts again. Killed at boot five times in a row, it cannot boot."""
    process = supervise(tmp_path, "never_ready")
    try:
        for killed in range(5):
            pid = _started_pids(process, 1)[0]
            assert process.poll() is None, f"halted after {killed} kills"
            os.kill(pid, signal.SIGKILL)
        assert process.wait(30) == 3
    finally:
        process.kill()


def test_a_child_exiting_before_it_booted_halts_the_supervisor(tmp_path: Path) -> None:
    process = supervise(tmp_path, "exits_at_boot")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 3
    assert output.count('"child_started"') == 1 and '"child_boot_failed"' in output
