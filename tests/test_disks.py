"""Full disks, made real: tmpfs mounts of a few megabytes under the storage folder and VAR_DIR,
filled while the system runs. A disk that fills during processing defers the job (no verdict
on the file, no attempt spent) until it frees; a node whose disk is full refuses uploads with a
507 before it writes anything, says so on `/readyz` and `/metrics`, keeps serving reads, kills
none of its processes (prometheus_client's memory maps used to SIGBUS them) and recovers alone
when space frees."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import fixtures
import psycopg
import pytest
import requests
from disks import MiB
from helpers import seed, wait_for
from system import System
from test_metrics import scrape, value

pytestmark = pytest.mark.slow


def _media(database_url: str) -> list[tuple[str, bool, int, str | None]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT status, rejected, attempts, error FROM media ORDER BY id").fetchall()


@contextmanager
def workers_stopped(system: System) -> Iterator[None]:
    """The media workers stopped (SIGSTOP) while the block runs: what is uploaded meanwhile
    waits for them."""
    workers = system.role("worker")
    for worker in workers:
        worker.suspend()
    try:
        yield
    finally:
        for worker in workers:
            worker.resume()


def accepted(response: requests.Response) -> int:
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def test_a_disk_that_fills_while_processing_defers_the_job_and_judges_no_file(
    small_disk, start_system, database_url: str, tmp_path: Path
) -> None:
    """FFmpeg 5.1 exits 0 after "Error writing trailer …: No space left on device": the cut
    rendition used to be judged invalid, the post failed and the same bytes refused for good.
    Now a write the disk refused is the disk's fault: the job waits, its attempt not spent,
    and completes once there is room."""
    disk = small_disk("storage", 24 * MiB)
    system = start_system(STORAGE_DIR=str(disk.path), DISK_RESERVE_BYTES="0", WORKERS="1", JANITOR_INTERVAL="1").wait_ready()
    auth = system.sign_up()
    files = [
        fixtures.mp4_h264_aac(tmp_path, seconds=1, size="160x120"),  # remuxed as it is
        fixtures.mpeg4_avi(tmp_path, seconds=1, size="160x120"),  # transcoded
        fixtures.animated_gif(tmp_path),  # a silent loop
        fixtures.jpeg(tmp_path, width=200, height=150),  # ImageMagick
    ]
    with workers_stopped(system):
        posts = [accepted(system.upload(auth, path)) for path in files]
        disk.fill(leave=4096)
    wait_for(
        lambda: len(system.events("job_finalized", status="deferred")) >= 2 * len(files), 60, "every job to be deferred twice"
    )
    assert all(status == "pending" or status == "processing" for status, *_ in _media(database_url)), _media(database_url)
    assert not any(rejected for _s, rejected, _a, _e in _media(database_url))
    assert any("could not write its output" in (event["error"] or "") for event in system.events("job_finalized"))

    disk.free_up()
    for post_id in posts:
        assert system.wait_done(auth, post_id, timeout=60)["status"] == "completed", post_id
    assert {attempts for _s, _r, attempts, _e in _media(database_url)} == {1}  # the deferred tries were not counted


def test_a_node_whose_storage_disk_is_full_refuses_uploads_with_507_and_recovers_alone(
    small_disk, start_system, database_url: str, tmp_path: Path
) -> None:
    disk = small_disk("storage", 24 * MiB)
    system = start_system(
        STORAGE_DIR=str(disk.path), DISK_RESERVE_BYTES=str(2 * MiB), WORKERS="1", JANITOR_INTERVAL="1",
        UPLOAD_CONCURRENCY="15", WEB_THREADS="32",  # one account's fifteen at once: the disk answers, not the gate
    ).wait_ready()  # fmt: skip
    auth = system.sign_up()
    seed(database_url, 3)
    broken = fixtures.truncated(fixtures.mp4_h264_aac(tmp_path, seconds=2), tmp_path, "cut.mp4")
    with workers_stopped(system):
        hostile = accepted(system.upload(auth, broken))
        disk.fill(leave=1 * MiB)  # below the reserve
    # A file that fails while the disk is full is not judged: a tool short of room may say anything.
    wait_for(lambda: system.events("job_finalized", status="deferred"), 30, "the broken file's job to be deferred")
    assert system.post(auth, hostile)["status"] in ("pending", "processing")

    body = fixtures.jpeg(tmp_path, width=640, height=480).read_bytes() * 20  # a body bigger than the socket buffers
    with ThreadPoolExecutor(15) as pool:
        answers = list(pool.map(lambda n: _raw_upload(system, auth, body, n), range(45)))
    assert answers == [507] * 45, answers
    ready = system.http.get(f"{system.url}/readyz")
    assert ready.status_code == 503 and "the disk of STORAGE_DIR is full" in ready.json()["detail"], ready.text
    assert value(scrape(system), "memedroid_dependency_up", dependency="storage") == 0
    assert system.http.get(f"{system.url}/api/v1/posts").status_code == 200  # reads go on

    disk.free_up()
    wait_for(system.answers, 10, "/readyz to be ready again")
    after = accepted(system.upload(auth, fixtures.jpeg(tmp_path, "after.jpg", seed="green")))
    assert system.wait_done(auth, after)["status"] == "completed"
    failed = system.wait_done(auth, hostile)
    assert failed["status"] == "failed" and "truncated" in failed["error"], failed  # judged, once there was room


def _raw_upload(system: System, auth: dict[str, str], data: bytes, n: int) -> int | str:
    """The status an upload gets, or how its connection failed."""
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n' + data + b"\r\n--b--\r\n"
    try:
        response = requests.post(
            f"{system.url}/api/v1/posts",
            data=body,
            headers={**auth, "Content-Type": "multipart/form-data; boundary=b"},
            timeout=30,
        )
    except requests.RequestException as exc:
        return type(exc).__name__
    assert response.headers["Content-Type"] == "application/problem+json"
    return response.status_code


def test_a_full_var_dir_kills_no_process(small_disk, start_system, tmp_path: Path) -> None:
    """Every process writes its metrics to a memory-mapped file under VAR_DIR; on a full disk
    a sparse map killed them with SIGBUS (media workers at boot: the supervisor halted; HTTP
    workers at each request, thousands of deaths a minute). The files' blocks are allocated
    before they are mapped, and without room a process keeps its samples in memory."""
    disk = small_disk("var", 16 * MiB)
    system = start_system(VAR_DIR=str(disk.path), DISK_RESERVE_BYTES=str(MiB), WORKERS="1").wait_ready()
    auth = system.sign_up()
    disk.fill()
    for name in ("worker 1", "finalizer"):  # they boot again, on a full disk
        system.role(name)[0].send_signal(signal.SIGKILL)
    for http_worker in system.role("http")[0].children():
        http_worker.send_signal(signal.SIGKILL)
    time.sleep(3)
    statuses = [system.http.get(f"{system.url}/api/v1/posts?limit={n % 5 + 1}").status_code for n in range(200)]
    assert set(statuses) == {200}
    ready = system.http.get(f"{system.url}/readyz")
    assert ready.status_code == 503 and "the disk of VAR_DIR is full" in ready.json()["detail"], ready.text
    assert system.upload(auth, fixtures.jpeg(tmp_path)).status_code == 507
    assert system.process.poll() is None and not system.events("child_boot_failed")
    assert len(system.events("child_died")) <= 3, system.events("child_died")  # the three killed here, no more
    assert system.events("metrics_degraded")

    disk.free_up()
    wait_for(system.answers, 15, "/readyz to be ready again")
    after = accepted(system.upload(auth, fixtures.jpeg(tmp_path, "after.jpg", seed="green")))
    assert system.wait_done(auth, after)["status"] == "completed"
