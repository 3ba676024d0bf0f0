"""The media pipeline end to end: real supervisor, workers, finalizer and janitor; real
PostgreSQL, ImageMagick and FFmpeg; fixtures generated here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import fixtures
import piexif
import psutil
import psycopg
import pytest
from helpers import wait_for
from stores import both_stores, put_file
from system import PeakRss, System

pytestmark = pytest.mark.slow


def ffprobe(data: bytes, folder: Path) -> dict[str, Any]:
    path = folder / f"probe-{time.monotonic_ns()}.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return dict(json.loads(out))


def identify(data: bytes, folder: Path, fmt: str = "%m %w %h %[colorspace] %A") -> list[str]:
    path = folder / f"identify-{time.monotonic_ns()}"
    path.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k != "MAGICK_CONFIGURE_PATH"}
    return subprocess.run(
        ["/usr/bin/identify", "-format", fmt, str(path)], check=True, capture_output=True, text=True, env=env
    ).stdout.split()


def media_row(system: System, media_id: int | None = None) -> list[dict[str, Any]]:
    with psycopg.connect(system.env["DATABASE_URL"], row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT id, status, attempts, error, lease_token FROM media ORDER BY id").fetchall()


@both_stores
def test_every_supported_kind_is_processed(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="2").wait_ready()
    auth = system.sign_up()
    cases = {
        "gps": fixtures.jpeg_with_gps_and_rotation(tmp_path),
        "alpha": fixtures.png_with_alpha(tmp_path),
        "cmyk": fixtures.cmyk_jpeg(tmp_path),
        "large": fixtures.large_jpeg(tmp_path),
        "gif": fixtures.animated_gif(tmp_path),
        "webp": fixtures.animated_webp(tmp_path),
        "mp4": fixtures.mp4_h264_aac(tmp_path),
        "webm": fixtures.webm_vp9(tmp_path),
        "mov": fixtures.silent_mov(tmp_path),
        "rotated": fixtures.rotated_mp4(tmp_path),
    }
    ids = {}
    for name, path in cases.items():
        response = system.upload(auth, path, name=f"{name}.bin")
        assert response.status_code == 202, response.text
        ids[name] = response.json()["id"]
    posts = {name: system.wait_done(auth, post_id) for name, post_id in ids.items()}
    for name, post in posts.items():
        assert post["status"] == "completed", (name, post)
        media = post["media"]
        assert system.fetch(media["thumbnail_url"]), name
        assert len(media["blurhash"] or "") >= 6, name
        posts[name]["bytes"] = system.fetch(media["url"])

    gps = posts["gps"]
    assert (gps["media"]["kind"], gps["media"]["mime"], gps["media"]["width"], gps["media"]["height"]) == (
        "image",
        "image/jpeg",
        32,
        64,
    )
    exif = piexif.load(gps["bytes"])
    assert not exif["GPS"] and not exif["0th"], "metadata must be stripped"
    assert identify(gps["bytes"], tmp_path)[:3] == ["JPEG", "32", "64"]  # orientation applied to the pixels

    alpha = posts["alpha"]
    assert alpha["media"]["mime"] == "image/webp"
    assert identify(alpha["bytes"], tmp_path, "%m %A")[0] == "WEBP" and identify(alpha["bytes"], tmp_path, "%A")[0].lower() in (
        "true",
        "blend",
    )

    assert identify(posts["cmyk"]["bytes"], tmp_path)[3] == "sRGB"
    assert (posts["large"]["media"]["width"], posts["large"]["media"]["height"]) == (2048, 1024)
    thumb = system.fetch(posts["large"]["media"]["thumbnail_url"])
    assert identify(thumb, tmp_path)[1:3] == ["480", "240"]

    for name in ("gif", "webp"):
        media = posts[name]["media"]
        assert (media["kind"], media["mime"], media["loop"]) == ("animated", "video/mp4", True)
        streams = ffprobe(posts[name]["bytes"], tmp_path)["streams"]
        assert [s["codec_type"] for s in streams] == ["video"], f"{name} must be silent"

    for name, audio in (("mp4", True), ("webm", True), ("mov", False), ("rotated", True)):
        media = posts[name]["media"]
        assert (media["kind"], media["mime"]) == ("video", "video/mp4")
        info = ffprobe(posts[name]["bytes"], tmp_path)
        codecs = {s["codec_type"]: s for s in info["streams"]}
        assert codecs["video"]["codec_name"] == "h264" and codecs["video"]["pix_fmt"] == "yuv420p"
        assert ("audio" in codecs) is audio, name
        if audio:
            assert codecs["audio"]["codec_name"] == "aac"
        assert media["width"] % 2 == 0 and media["height"] % 2 == 0 and max(media["width"], media["height"]) <= 1280
        assert abs(media["duration_s"] - 1.0) < 0.2
        data = posts[name]["bytes"]
        assert data.index(b"moov") < data.index(b"mdat"), "faststart: the index comes first"
    assert (posts["rotated"]["media"]["width"], posts["rotated"]["media"]["height"]) == (240, 320)
    assert not system.events("child_died")


@both_stores
def test_hostile_inputs_fail_cleanly_and_no_worker_is_lost(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="2", MAX_VIDEO_SECONDS="3", MAX_UPLOAD_BYTES="3000000").wait_ready()
    auth = system.sign_up()
    workers = {p.pid for p in system.role("worker")}
    marker = tmp_path / "pwned"
    at_upload = {
        "empty": (fixtures.write(tmp_path, "empty.jpg", b""), 422),
        "text": (fixtures.write(tmp_path, "text.jpg", b"hello, I am not an image\n"), 415),
        "mvg": (fixtures.write(tmp_path, "mvg.jpg", fixtures.MVG_PAYLOAD.replace(b"{marker}", str(marker).encode())), 415),
        "svg": (fixtures.write(tmp_path, "xxe.jpg", fixtures.SVG_XXE), 415),
        "hls": (fixtures.write(tmp_path, "list.mp4", fixtures.HLS_PLAYLIST), 415),
        "ps": (fixtures.write(tmp_path, "doc.jpg", fixtures.POSTSCRIPT), 415),
        "elf": (Path("/bin/true"), 415),
        "oversize": (fixtures.write(tmp_path, "big.jpg", fixtures.jpeg(tmp_path).read_bytes() + b"\0" * 3_100_000), 413),
    }
    for name, (path, status) in at_upload.items():
        response = system.upload(auth, path, name=path.name)
        assert response.status_code == status, (name, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
    in_pipeline = {
        "truncated jpeg": (
            fixtures.truncated(fixtures.jpeg(tmp_path, "whole.jpg", 400, 300), tmp_path, "cut.jpg"),
            "truncated JPEG",
        ),
        "truncated mp4": (
            fixtures.truncated(fixtures.mp4_h264_aac(tmp_path, seconds=3, name="whole.mp4"), tmp_path, "cut.mp4"),
            "truncated",
        ),
        "png bomb": (fixtures.png_bomb(tmp_path), "too large"),
        "audio only": (fixtures.audio_only_mp4(tmp_path), "audio-only"),
        "too long": (fixtures.long_video(tmp_path, 3), "longer than 3 s"),
        # Bombs: each once drove a worker to gigabytes, crashed it or kept FFmpeg busy for minutes.
        "text bomb": (fixtures.png_text_bomb(tmp_path), "too much compressed metadata"),
        "webp frames": (fixtures.webp_frame_bomb(tmp_path), "1999 frames of 4096×4096"),
        "gif frames": (fixtures.gif_frame_bomb(tmp_path), "1999 frames of 8192×8192"),
        "lying duration": (fixtures.lying_mp4(tmp_path), "longer than 3 s (300 s)"),
    }
    ids = {}
    rss = PeakRss(system, tools=True).start()
    for name, (path, _reason) in in_pipeline.items():
        response = system.upload(auth, path)
        assert response.status_code == 202, (name, response.text)
        ids[name] = response.json()["id"]
    for name, (_path, reason) in in_pipeline.items():
        post = system.wait_done(auth, ids[name], timeout=60)
        assert post["status"] == "failed" and reason in post["error"], (name, post)
        assert "/" not in post["error"] and "Traceback" not in post["error"], post["error"]
    rss.stop()
    assert rss.peak_mb <= 1024, rss.peak_mb
    good = system.upload(auth, fixtures.jpeg(tmp_path, "good.jpg", seed="white")).json()
    assert system.wait_done(auth, good["id"])["status"] == "completed"

    assert {p.pid for p in system.role("worker")} == workers and not system.events("child_died")
    assert not marker.exists()
    assert system.files("tmp") == []
    # Only failed uploads keep their raw bytes (for `memedroid reprocess`), nothing else.
    with psycopg.connect(system.env["DATABASE_URL"]) as conn:
        failed = {h for (h,) in conn.execute("SELECT encode(sha256, 'hex') FROM media WHERE status = 'failed'")}
    assert {p.name for p in system.files("raw")} == failed and len(failed) == len(in_pipeline)
    # No byte of /etc/passwd reached any output.
    passwd = Path("/etc/passwd").read_bytes()[:32]
    assert all(passwd not in system.read(path) for path in system.files("media"))
    # Known-bad bytes are refused at once the second time.
    again = system.upload(auth, in_pipeline["png bomb"][0])
    assert again.status_code == 422 and "too large" in again.json()["detail"]


@both_stores
def test_dedup_processes_the_same_bytes_once(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="2").wait_ready()
    alice, bob = system.sign_up("alice"), system.sign_up("bob")
    clip = fixtures.mp4_h264_aac(tmp_path, seconds=2, size="640x360", name="shared.mp4")
    first = system.upload(alice, clip).json()
    second = system.upload(bob, clip).json()  # while the first is still in flight
    assert first["status"] in ("pending", "processing") and second["status"] in ("pending", "processing", "completed")
    done = [system.wait_done(auth, post["id"]) for auth, post in ((alice, first), (bob, second))]
    assert [post["status"] for post in done] == ["completed", "completed"]
    assert done[0]["media"] == done[1]["media"]
    assert len(media_row(system)) == 1
    assert len(system.events("job_started")) == 1

    third = system.upload(alice, clip)
    assert third.status_code == 202 and third.json()["status"] == "completed"
    assert third.json()["media"] == done[0]["media"]
    assert len(system.events("job_started")) == 1
    # Each post got its first hot rank, in both slots, when it became visible: the first two
    # from the finalizer, the third at once (its media had completed).
    with psycopg.connect(system.env["DATABASE_URL"]) as conn:
        ranks = conn.execute("SELECT post_id, min(hot) FROM post_ranks GROUP BY post_id ORDER BY post_id").fetchall()
    assert [post_id for post_id, _ in ranks] == [first["id"], second["id"], third.json()["id"]]
    assert all(hot > 0 for _, hot in ranks), ranks
    hot = system.http.get(f"{system.url}/api/v1/posts?sort=hot").json()["items"]
    assert [item["id"] for item in hot] == [third.json()["id"], second["id"], first["id"]]


def test_one_request_id_follows_an_upload_through_every_process(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1").wait_ready()
    auth = system.sign_up()
    with fixtures.jpeg(tmp_path).open("rb") as file:
        response = system.http.post(
            f"{system.url}/api/v1/posts", headers={**auth, "X-Request-ID": "follow-me-123"}, files={"file": file}
        )
    assert response.headers["X-Request-ID"] == "follow-me-123"
    post = system.wait_done(auth, response.json()["id"])
    assert post["status"] == "completed"
    wait_for(lambda: system.events("job_finalized", request_id="follow-me-123"), what="finalizer log")
    traced = [r for r in system.records() if r.get("request_id") == "follow-me-123"]
    assert {"http", "worker 1", "finalizer"} <= {r["role"] for r in traced}
    assert {"upload_accepted", "job_started", "job_processed", "job_finalized"} <= {r.get("event") for r in traced}
    finalized = system.events("job_finalized", request_id="follow-me-123")[0]
    assert finalized["post_id"] == post["id"] and finalized["attempt"] == 1 and finalized["duration_ms"] >= 0


@both_stores
def test_streamed_chunked_upload(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", MAX_UPLOAD_BYTES="200000").wait_ready()
    auth = system.sign_up()
    boundary = "memedroidboundary"
    image = fixtures.jpeg(tmp_path).read_bytes()

    def body(payload: bytes):  # a generator makes requests send Transfer-Encoding: chunked
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'.encode()
        for start in range(0, len(payload), 10_000):
            yield payload[start : start + 10_000]
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    ok = system.http.post(f"{system.url}/api/v1/posts", headers=headers, data=body(image))
    assert ok.status_code == 202, ok.text
    assert system.wait_done(auth, ok.json()["id"])["status"] == "completed"
    try:
        too_big = system.http.post(f"{system.url}/api/v1/posts", headers=headers, data=body(image + b"\x00" * 300_000))
        assert too_big.status_code == 413
    except Exception as exc:  # the server may close the connection after its 413, as it may
        assert "Connection" in type(exc).__name__ or "connection" in str(exc).lower(), exc
    assert [p.name for p in system.files("raw")] == []


@both_stores
def test_a_worker_killed_mid_job_is_replaced_and_the_job_retried(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1").wait_ready()
    auth = system.sign_up()
    clip = fixtures.mp4_h264_aac(tmp_path, seconds=8, size="1280x720", name="slow.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "libvpx-vp9", "-deadline", "realtime",
                    "-cpu-used", "8", "-c:a", "libopus", str(tmp_path / "slow.webm")], check=True)  # fmt: skip
    post = system.upload(auth, tmp_path / "slow.webm").json()
    ffmpeg = wait_for(lambda: _tool_of(system, "ffmpeg"), what="ffmpeg to start")
    worker = ffmpeg.parent()
    os.killpg(worker.pid, signal.SIGKILL)
    done = system.wait_done(auth, post["id"])
    assert done["status"] == "completed", done
    assert media_row(system)[0]["attempts"] == 2
    assert system.events("child_died") and system.events("job_released", media_id=media_row(system)[0]["id"])
    assert not ffmpeg.is_running() or ffmpeg.status() == psutil.STATUS_ZOMBIE  # no orphan encoder left


def avi_clip(folder: Path, n: int) -> Path:
    """A 3 s MPEG-4/MP3 AVI: it must be transcoded, which keeps a worker busy for a while."""
    clip = fixtures.mp4_h264_aac(folder, seconds=3, size="640x480", name=f"c{n}.mp4")
    path = folder / f"c{n}.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "mpeg4", "-c:a", "mp3",
                    "-metadata", f"title=clip {n}", str(path)], check=True)  # fmt: skip
    return path


def _tool_of(system: System, name: str) -> psutil.Process | None:
    return next(iter(system.tools(name)), None)


def test_a_stopped_ffmpeg_is_killed_at_the_timeout_and_the_slot_freed(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", JOB_TIMEOUT="5").wait_ready()
    auth = system.sign_up()
    post = system.upload(auth, avi_clip(tmp_path, 0)).json()

    def stopped_encoder() -> psutil.Process | None:
        encoder = _tool_of(system, "ffmpeg")
        try:
            if encoder is not None:
                encoder.send_signal(signal.SIGSTOP)
                return encoder if encoder.status() == psutil.STATUS_STOPPED else None
        except psutil.NoSuchProcess:
            pass
        return None

    ffmpeg = wait_for(stopped_encoder, what="an encoder to stop")
    done = system.wait_done(auth, post["id"], timeout=60)
    assert done["status"] == "completed", done  # the second attempt ran unhindered
    assert media_row(system)[0]["attempts"] == 2
    retried = system.events("job_processed", outcome="retry")
    assert retried and "timed out after 5 s" in retried[0]["error"]
    assert not ffmpeg.is_running() or ffmpeg.status() == psutil.STATUS_ZOMBIE
    # The same worker carried on: the slot was freed, not the process replaced.
    assert not system.events("child_died")
    second = system.upload(auth, fixtures.jpeg(tmp_path)).json()
    assert system.wait_done(auth, second["id"])["status"] == "completed"


def test_a_hung_worker_is_killed_by_the_supervisor_and_replaced(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", JOB_TIMEOUT="4").wait_ready()
    auth = system.sign_up()
    post = system.upload(auth, avi_clip(tmp_path, 0)).json()
    ffmpeg = wait_for(lambda: _tool_of(system, "ffmpeg"), what="processing to start")
    worker = ffmpeg.parent()
    worker.send_signal(signal.SIGSTOP)  # hangs in-process, as a stuck ImageMagick call would
    done = system.wait_done(auth, post["id"], timeout=60)
    assert done["status"] == "completed", done
    assert system.events("worker_killed_timeout", pid=worker.pid)
    released = system.events("job_released")
    assert released and "timed out after 4 s" in released[0]["error"]
    assert media_row(system)[0]["attempts"] == 2
    assert worker.pid not in {p.pid for p in system.role("worker")} and len(system.role("worker")) == 1


def test_full_queue_still_accepts_and_the_sweep_catches_up(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1", JOB_QUEUE_SIZE="1", JANITOR_INTERVAL="0.5").wait_ready()
    auth = system.sign_up()
    ids = []
    for n in range(6):
        response = system.upload(auth, fixtures.jpeg(tmp_path, f"q{n}.jpg", width=800, height=600, seed=f"gray{n * 10}"))
        assert response.status_code == 202
        ids.append(response.json()["id"])
    assert system.events("queue_full")
    assert [system.wait_done(auth, post_id)["status"] for post_id in ids] == ["completed"] * 6


@both_stores
def test_kill_9_of_everything_loses_nothing(start_system, tmp_path: Path) -> None:
    env = {"WORKERS": "2", "JANITOR_INTERVAL": "0.5", "ORPHAN_GRACE_SECONDS": "10"}
    system = start_system(**env).wait_ready()
    auth = system.sign_up()
    ids = [system.upload(auth, avi_clip(tmp_path, n)).json()["id"] for n in range(6)]
    wait_for(lambda: _tool_of(system, "ffmpeg"), what="processing to start")
    system.kill_everything()
    assert any(row["status"] in ("pending", "processing") for row in media_row(system))

    system.start()
    system.wait_ready()
    posts = [system.wait_done(auth, post_id) for post_id in ids]
    assert [p["status"] for p in posts] == ["completed"] * 6
    wait_for(lambda: system.files("tmp") == [] and system.files("raw") == [], timeout=40, what="orphans to go")
    kept = {p["media"]["url"].rsplit("/", 1)[1] for p in posts} | {p["media"]["thumbnail_url"].rsplit("/", 1)[1] for p in posts}
    assert {p.name for p in system.files("media")} == kept
    assert system.stop() == 0


def test_graceful_sigterm_exits_0_and_loses_no_job(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="2", GRACEFUL_TIMEOUT="20").wait_ready()
    auth = system.sign_up()
    ids = [system.upload(auth, avi_clip(tmp_path, n)).json()["id"] for n in range(4)]
    wait_for(lambda: system.events("job_started"), what="processing to start")
    started = time.monotonic()
    assert system.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 25
    assert all(row["status"] in ("pending", "completed") for row in media_row(system)), media_row(system)

    system.start()
    system.wait_ready()
    assert [system.wait_done(auth, post_id)["status"] for post_id in ids] == ["completed"] * 4
    assert system.stop() == 0


@both_stores
def test_orphan_files_go_at_the_janitors_next_round_and_needed_ones_stay(start_system, tmp_path: Path) -> None:
    # The least grace a running system takes (twice DB_TIMEOUT): an upload's file is stored just before its row commits.
    system = start_system(WORKERS="1", JANITOR_INTERVAL="0.5", ORPHAN_GRACE_SECONDS="10").wait_ready()
    auth = system.sign_up()
    post = system.wait_done(auth, system.upload(auth, fixtures.jpeg(tmp_path)).json()["id"])
    needed = system.files("media")
    assert post["status"] == "completed" and len(needed) == 2
    system.stop()
    put_file(system.env, "media", f"ab/cd/{'ab' * 32}.jpg", b"left behind")
    put_file(system.env, "raw", "cd" * 32, b"an upload nobody points at")
    put_file(system.env, "raw", ".upload-abandoned", b"half an upload")
    system.start()
    system.wait_ready()
    wait_for(lambda: system.files("media") == needed and system.files("raw") == [], 30, "the orphans to go")
    assert system.events("orphan_media_deleted") and len(system.events("orphan_raw_deleted")) >= 2


@both_stores
def test_feed_sees_completion_and_shared_media_survives_one_delete(start_system, tmp_path: Path) -> None:
    system = start_system(WORKERS="1").wait_ready()
    alice, bob = system.sign_up("alice"), system.sign_up("bob")
    image = fixtures.jpeg(tmp_path, "shared.jpg", seed="teal")
    assert system.http.get(f"{system.url}/api/v1/posts").json()["items"] == []  # now cached
    first = system.upload(alice, image).json()
    done = system.wait_done(alice, first["id"])
    feed = system.http.get(f"{system.url}/api/v1/posts").json()["items"]
    assert [item["id"] for item in feed] == [first["id"]]  # the finalizer invalidated the cache

    second = system.upload(bob, image).json()
    assert second["status"] == "completed" and second["media"] == done["media"]
    urls = [done["media"]["url"], done["media"]["thumbnail_url"]]
    assert system.http.delete(f"{system.url}/api/v1/posts/{first['id']}", headers=alice).status_code == 204
    assert all(system.get(url).status_code == 200 for url in urls)  # bob's post still works
    assert [i["id"] for i in system.http.get(f"{system.url}/api/v1/posts").json()["items"]] == [second["id"]]
    assert system.http.delete(f"{system.url}/api/v1/posts/{second['id']}", headers=bob).status_code == 204
    assert all(system.get(url).status_code in (403, 404) for url in urls)  # a bucket may say 403 for a missing key
    assert system.files("media") == [] and media_row(system) == []
