"""What one file may cost a worker, bounded like every other limit: the work a video asks for
is refused before anything decodes it, a timeout the file alone explains is a verdict (not
three), and ImageMagick's temporary files live in the job's own folder, not in /tmp."""

from __future__ import annotations

import re
import struct
import threading
import time
from pathlib import Path

import fixtures
import pytest
from helpers import wait_for
from system import System
from test_pipeline import media_row

pytestmark = pytest.mark.slow


def _failed(system: System, auth: dict[str, str], path: Path, timeout: float = 60) -> dict[str, object]:
    response = system.upload(auth, path)
    assert response.status_code == 202, response.text
    post = system.wait_done(auth, response.json()["id"], timeout=timeout)
    assert post["status"] == "failed", post
    return post


def test_the_work_a_video_asks_for_is_refused_before_it_is_decoded(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", MAX_VIDEO_FPS="60", MAX_VIDEO_PIXELS="50000000").wait_ready()
    auth = system.sign_up()
    fast = fixtures.fast_clip(tmp_path, fps=240)
    big = fixtures.mpeg4_avi(tmp_path, seconds=8, size="640x480")  # 200 frames of 307,200 pixels: 61 million
    started = time.monotonic()
    assert "too many frames per second: 240 (at most 60)" in str(_failed(system, auth, fast)["error"])
    assert re.search(
        r"too much to process: 20\d frames of 640×480 pixels \(at most 50 million", str(_failed(system, auth, big)["error"])
    )
    assert time.monotonic() - started < 20
    assert not system.events("job_processed", outcome="retry")
    assert len(system.events("job_started")) == 2  # one attempt each: a verdict on the file


def test_a_timeout_the_file_alone_explains_is_a_verdict_not_three(start_system, tmp_path: Path) -> None:
    """The job had the CPU and still ran past JOB_TIMEOUT: another attempt would only time out
    again. It fails once, with the reason, and its bytes are refused (a crash or a starved
    worker would be tried again)."""
    system = start_system(WORKERS="1", JOB_TIMEOUT="3").wait_ready()
    auth = system.sign_up()
    clip = fixtures.mpeg4_avi(tmp_path, seconds=30, size="1280x720")  # far more than 3 s of transcoding
    post = _failed(system, auth, clip, timeout=90)
    assert "takes too long to process" in str(post["error"]), post
    assert [row["attempts"] for row in media_row(system)] == [1]
    again = system.upload(auth, clip)
    assert again.status_code == 422 and "takes too long to process" in again.json()["detail"]


def test_a_jpeg_whose_size_hides_behind_its_metadata_is_measured_before_it_is_decoded(start_system, tmp_path: Path) -> None:
    """The header check used to read 256 KB: a 328 KB JPEG whose frame header came after that
    went to ImageMagick unmeasured, which wrote a 977 MB pixel cache to /tmp."""
    scratch = tmp_path / "system-tmp"
    scratch.mkdir()
    system = start_system(WORKERS="1", TMPDIR=str(scratch)).wait_ready()
    auth = system.sign_up()
    small = fixtures.jpeg(tmp_path, width=64, height=64).read_bytes()
    padding = b"".join(b"\xff\xe1" + struct.pack(">H", 65535) + b"\0" * 65533 for _ in range(5))  # 320 KB of APP1
    frame = small.index(b"\xff\xc0")
    huge = bytearray(small[:2] + padding + small[2:])
    at = len(padding) + frame + 5
    huge[at : at + 4] = struct.pack(">HH", 20000, 20000)  # height, width: 400 megapixels
    path = fixtures.write(tmp_path, "hidden.jpg", bytes(huge))
    started = time.monotonic()
    post = _failed(system, auth, path)
    assert "the image is too large: 20000×20000 pixels" in str(post["error"]), post
    assert time.monotonic() - started < 10
    assert not list(scratch.glob("magick-*"))


def test_imagemagicks_temporary_files_go_in_the_jobs_folder(start_system, tmp_path: Path) -> None:
    """A large image whose pixels outgrow ImageMagick's memory and map limits is cached on disk:
    in the job's own folder (on the storage disk, gone with the lease), never in /tmp."""
    scratch = tmp_path / "system-tmp"
    scratch.mkdir()
    system = start_system(WORKERS="1", TMPDIR=str(scratch)).wait_ready()
    auth = system.sign_up()
    large = fixtures.jpeg(tmp_path, "large.jpg", width=9000, height=8000)  # 72 megapixels: more than the area limit
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.update(str(path.relative_to(system.storage)) for path in system.storage.glob("tmp/*/magick-*"))
            seen.update(str(path) for path in scratch.glob("magick-*"))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        response = system.upload(auth, large)
        assert response.status_code == 202, response.text
        assert system.wait_done(auth, response.json()["id"], timeout=120)["status"] == "completed"
    finally:
        stop.set()
        watcher.join()
    assert seen and all(path.startswith("tmp/") for path in seen), seen  # its pixel cache was in the job's folder
    wait_for(lambda: not system.files("tmp"), 10, "the job's folder to go")
