"""The promises that break only in long-running operation: a transport no killed process can
wedge, readiness that tells the truth, failures of processing that do not poison the bytes,
and the kernel's memory ceiling on every worker."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import fixtures
import psycopg
import pytest
from helpers import wait_for
from system import System

pytestmark = pytest.mark.slow


def _attempts(system: System) -> list[int]:
    with psycopg.connect(system.env["DATABASE_URL"]) as conn:
        return [attempts for (attempts,) in conn.execute("SELECT attempts FROM media ORDER BY id")]


def _replaced(system: System, role: str, old_pid: int) -> None:
    wait_for(lambda: [p for p in system.role(role) if p.pid != old_pid], what=f"a new {role}")


def test_idle_pipeline_processes_killed_wedge_nothing(start_system, tmp_path: Path) -> None:
    """kill -9 of the idle finalizer and of a worker waiting for a job (each used to leave a
    queue lock held forever): the replacements and the survivors carry on at once."""
    system = start_system(WORKERS="2").wait_ready()
    auth = system.sign_up()
    for role in ("finalizer", "worker 1"):
        victim = system.role(role)[0]
        os.kill(victim.pid, signal.SIGKILL)
        _replaced(system, role, victim.pid)
    posts = [system.upload(auth, fixtures.jpeg(tmp_path, f"after{n}.jpg", seed=f"gray{n * 20}")).json() for n in range(4)]
    assert [system.wait_done(auth, post["id"], timeout=30)["status"] for post in posts] == ["completed"] * 4
    assert _attempts(system) == [1] * 4  # none waited for a lease to expire


def test_readyz_reports_a_stalled_finalizer_which_is_then_replaced(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", PIPELINE_STALL_SECONDS="4").wait_ready()  # stalled for 4-8 s: time to see it
    auth = system.sign_up()
    finalizer = system.role("finalizer")[0]
    finalizer.send_signal(signal.SIGSTOP)  # hung, not dead: nothing restarts it by itself
    post = system.upload(auth, fixtures.jpeg(tmp_path)).json()

    def not_ready() -> dict[str, object] | None:
        response = system.http.get(f"{system.url}/readyz")
        return dict(response.json()) if response.status_code == 503 else None

    problem = wait_for(not_ready, timeout=20, what="/readyz to see the stall")
    assert "finalizer is not finalizing" in str(problem["detail"])
    metrics = system.http.get(f"{system.url}/metrics").text
    assert 'memedroid_dependency_up{dependency="pipeline"} 0.0' in metrics
    # Twice the stall time without a heartbeat: the supervisor kills it and a new one finishes the job.
    assert system.wait_done(auth, post["id"], timeout=30)["status"] == "completed"
    assert system.events("finalizer_killed_stalled", pid=finalizer.pid)
    wait_for(lambda: system.http.get(f"{system.url}/readyz").status_code == 200, timeout=20, what="ready again")
    assert system.events("pipeline_stalled") and system.events("pipeline_recovered")
    assert _attempts(system) == [1]  # the result waited in its channel for the new finalizer


def test_a_processing_failure_leaves_the_bytes_uploadable(start_system, tmp_path: Path) -> None:
    """Only a verdict on the content is remembered against the SHA-256: after a crash the same
    file may be uploaded again, and that upload (and the first post) completes."""
    system = start_system(WORKERS="1", MAX_ATTEMPTS="1").wait_ready()
    alice, bob = system.sign_up("alice"), system.sign_up("bob")
    clip = fixtures.mp4_h264_aac(tmp_path, seconds=8, size="1280x720", name="slow.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "mpeg4", "-c:a", "mp3",
                    str(tmp_path / "slow.avi")], check=True)  # fmt: skip
    first = system.upload(alice, tmp_path / "slow.avi").json()
    wait_for(system.tools, what="ffmpeg")
    os.killpg(system.role("worker")[0].pid, signal.SIGKILL)
    failed = system.wait_done(alice, first["id"], timeout=60)
    assert failed["status"] == "failed" and "stopped unexpectedly" in failed["error"], failed

    again = system.upload(bob, tmp_path / "slow.avi")
    assert again.status_code == 202 and again.json()["status"] == "pending", again.text
    assert system.wait_done(bob, again.json()["id"], timeout=90)["status"] == "completed"
    assert system.post(alice, first["id"])["status"] == "completed"  # they share the media
    assert system.events("upload_accepted", retried=True)


def test_the_memory_ceiling_fails_a_hungry_file_and_the_worker_carries_on(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", WORKER_MEMORY_BYTES=str(256 * 1024 * 1024)).wait_ready()
    auth = system.sign_up()
    huge = tmp_path / "huge.mp4"  # 8192×8192 frames: FFmpeg needs ~450 MB to decode them
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=0.2:size=8192x8192:rate=10",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(huge)], check=True)  # fmt: skip
    worker = system.role("worker")[0]
    post = system.wait_done(auth, system.upload(auth, huge).json()["id"], timeout=60)
    assert post["status"] == "failed" and "needs more memory" in post["error"], post
    again = system.upload(auth, huge)
    assert again.status_code == 422 and "needs more memory" in again.json()["detail"]  # a verdict on the file
    good = system.upload(auth, fixtures.jpeg(tmp_path)).json()
    assert system.wait_done(auth, good["id"])["status"] == "completed"
    assert [p.pid for p in system.role("worker")] == [worker.pid] and not system.events("child_died")
