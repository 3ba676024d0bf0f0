"""Ingestion through the app: streaming, sniffing, limits, dedup and visibility.

No pipeline processes here (the app has no job queue), so accepted posts stay pending; the
end-to-end tests in test_pipeline.py run the real workers.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from pathlib import Path

import fixtures
import psycopg
import pytest
from flask.testing import FlaskClient
from helpers import assert_problem, bearer, login, register, seed, signed_up

from memedroid.settings import Settings


@pytest.fixture
def auth(client: FlaskClient) -> dict[str, str]:
    return bearer(signed_up(client)["access_token"])


def upload(client: FlaskClient, auth: dict[str, str], data: bytes, name: str = "meme.jpg", **fields: object):
    body = {"file": (io.BytesIO(data), name, "image/jpeg"), **fields}
    return client.post("/api/v1/posts", headers=auth, data=body, content_type="multipart/form-data")


def storage_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.storage_dir.rglob("*") if p.is_file())


def media_rows(settings: Settings) -> list[tuple]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute("SELECT id, status, encode(sha256, 'hex'), source_type, request_id FROM media ORDER BY id").fetchall()


def test_upload_is_accepted_streamed_and_stored_by_hash(client, auth, settings, tmp_path) -> None:
    image = fixtures.jpeg(tmp_path).read_bytes()
    response = upload(client, auth, image, caption="  hello  ", tags="Cats, #funny,cats")
    assert response.status_code == 202, response.get_json()
    post = response.get_json()
    assert response.headers["Location"] == f"/api/v1/posts/{post['id']}"
    assert post["status"] == "pending" and post["media"] is None
    assert post["caption"] == "hello" and post["tags"] == ["cats", "funny"]
    assert post["author"]["username"] == "alice"

    [(media_id, status, sha, source_type, request_id)] = media_rows(settings)
    assert (status, source_type, sha) == ("pending", "jpeg", hashlib.sha256(image).hexdigest())
    assert request_id == response.headers["X-Request-ID"]
    assert storage_files(settings) == [settings.storage_dir / "raw" / sha]  # no client name, no temp file


def test_repeated_tag_fields_and_limits(client, auth, tmp_path) -> None:
    image = fixtures.jpeg(tmp_path).read_bytes()
    ok = upload(client, auth, image, tags=["a", "b,c"])
    assert ok.get_json()["tags"] == ["a", "b", "c"]
    too_many = upload(client, auth, image, tags=",".join(f"t{i}" for i in range(11)))
    assert assert_problem(too_many, 400)["errors"][0]["field"] == "tags"
    bad = upload(client, auth, image, tags="no spaces allowed")
    assert assert_problem(bad, 400)["errors"][0]["field"] == "tags"
    long_caption = upload(client, auth, image, caption="x" * 2001)
    assert assert_problem(long_caption, 400)["errors"][0]["field"] == "caption"
    nul_caption = upload(client, auth, image, caption="a\x00b")
    assert assert_problem(nul_caption, 400)["errors"] == [{"field": "caption", "message": "must not contain NUL characters"}]


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"just some text, honestly\n", "plain text"),
        (fixtures.POSTSCRIPT, "PostScript"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "ELF executable"),
        (fixtures.MVG_PAYLOAD, "MVG"),
        (fixtures.SVG_XXE, "SVG image"),
        (fixtures.HLS_PLAYLIST, "HLS/M3U playlist"),
        (b"%PDF-1.7\n", "PDF"),
    ],
)
def test_unsupported_types_are_415_naming_what_was_detected(client, auth, settings, data, detected) -> None:
    problem = assert_problem(upload(client, auth, data, name="innocent.jpg"), 415)
    assert detected in problem["detail"]
    assert storage_files(settings) == []  # the raw file is removed
    assert media_rows(settings) == []


def test_audio_only_m4a_is_refused_at_upload(client, auth, tmp_path) -> None:
    m4a = tmp_path / "song.m4a"
    fixtures._ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", "-f", "ipod", str(m4a))
    assert "audio-only" in assert_problem(upload(client, auth, m4a.read_bytes(), name="x.mp4"), 415)["detail"]


def test_empty_file_is_422(client, auth, settings) -> None:
    assert "empty" in assert_problem(upload(client, auth, b""), 422)["detail"]
    assert storage_files(settings) == []


def test_oversized_upload_is_413_and_leaves_nothing(make_client, auth, settings, tmp_path) -> None:
    client = make_client(max_upload_bytes=100_000)
    big = fixtures.large_jpeg(tmp_path, side=1200).read_bytes() + b"\x00" * 200_000
    assert len(big) > 100_000
    assert_problem(upload(client, auth, big), 413)
    assert storage_files(settings) == [] and media_rows(settings) == []


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": b"{}", "content_type": "application/json"}, 415),
        ({"data": {"caption": "no file"}, "content_type": "multipart/form-data"}, 400),
        ({"data": b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc",
          "content_type": "multipart/form-data; boundary=xyz"}, 400),
        # Found by schemathesis: a part whose name does not parse (here: none at all).
        ({"data": b"--xyz\r\nContent-Disposition: form-data\r\n\r\nfalse\r\n--xyz\r\n"
                  b"Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc\r\n--xyz--\r\n",
          "content_type": "multipart/form-data; boundary=xyz"}, 400),
    ],
)  # fmt: skip
def test_malformed_uploads(client, auth, settings, kwargs, status) -> None:
    assert_problem(client.post("/api/v1/posts", headers=auth, **kwargs), status)
    assert storage_files(settings) == []


def test_two_files_are_refused(client, auth, settings, tmp_path) -> None:
    image = fixtures.jpeg(tmp_path).read_bytes()
    body = {"file": [(io.BytesIO(image), "a.jpg"), (io.BytesIO(image), "b.jpg")]}
    assert_problem(client.post("/api/v1/posts", headers=auth, data=body, content_type="multipart/form-data"), 400)
    assert storage_files(settings) == []


def test_upload_needs_a_login(client, settings, tmp_path) -> None:
    assert_problem(upload(client, {}, fixtures.jpeg(tmp_path).read_bytes()), 401)
    assert storage_files(settings) == []


def test_backlog_over_the_limit_is_503_before_anything_is_written(make_client, auth, settings, tmp_path) -> None:
    client = make_client(max_backlog=1)
    assert upload(client, auth, fixtures.jpeg(tmp_path, seed="red").read_bytes()).status_code == 202
    before = storage_files(settings)
    refused = upload(client, auth, fixtures.jpeg(tmp_path, "b.jpg", seed="green").read_bytes())
    assert_problem(refused, 503)
    assert int(refused.headers["Retry-After"]) > 0
    assert storage_files(settings) == before and len(media_rows(settings)) == 1


def test_same_bytes_share_one_media(client, auth, settings, tmp_path) -> None:
    image = fixtures.jpeg(tmp_path).read_bytes()
    first = upload(client, auth, image).get_json()
    second = upload(client, auth, image, name="other-name.png").get_json()
    assert first["id"] != second["id"]
    assert len(media_rows(settings)) == 1
    assert len(storage_files(settings)) == 1


def test_concurrent_uploads_of_the_same_bytes_race_safely(make_client, auth, settings, tmp_path) -> None:
    image = fixtures.jpeg(tmp_path, seed="purple").read_bytes()
    statuses: list[int] = []
    client = make_client(upload_concurrency=6, web_threads=12)  # six at once, from one account and one worker

    def send() -> None:
        statuses.append(upload(client, auth, image).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [202] * 6
    assert len(media_rows(settings)) == 1
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone() == (6,)
    assert [p.parent.name for p in storage_files(settings)] == ["raw"]


def test_known_bad_bytes_are_refused_with_the_stored_reason(client, auth, settings, tmp_path) -> None:
    image = fixtures.jpeg(tmp_path).read_bytes()
    upload(client, auth, image)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE media SET status = 'failed', error = 'not a valid image: broken', rejected = true")
    problem = assert_problem(upload(client, auth, image), 422)
    assert "not a valid image: broken" in problem["detail"]
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone() == (1,)  # none for the refused upload
    assert storage_files(settings) == [settings.storage_dir / "raw" / media_rows(settings)[0][2]]  # kept for `reprocess`


def test_bytes_whose_processing_failed_may_be_uploaded_again(client, auth, settings, tmp_path) -> None:
    image = fixtures.jpeg(tmp_path).read_bytes()
    first = upload(client, auth, image).get_json()
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE media SET status = 'failed', attempts = 3, error = 'processing was interrupted too many times'")
    response = upload(client, auth, image)
    assert response.status_code == 202 and response.get_json()["status"] == "pending"
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT status, attempts, error, rejected FROM media").fetchall() == [("pending", 0, None, False)]
    assert client.get(f"/api/v1/posts/{first['id']}", headers=auth).get_json()["status"] == "pending"  # shared media


def test_pending_posts_are_visible_to_their_author_only(client, auth, tmp_path) -> None:
    post = upload(client, auth, fixtures.jpeg(tmp_path).read_bytes()).get_json()
    assert client.get(f"/api/v1/posts/{post['id']}", headers=auth).get_json()["status"] == "pending"
    assert_problem(client.get(f"/api/v1/posts/{post['id']}"), 404)
    register(client, "bob")
    bob = bearer(login(client, "bob").get_json()["access_token"])
    assert_problem(client.get(f"/api/v1/posts/{post['id']}", headers=bob), 404)
    assert_problem(client.get("/api/v1/posts/999999", headers=auth), 404)


@pytest.mark.parametrize("wait", ["-1", "31", "soon", "nan"])
def test_wait_parameter_is_validated(client, auth, tmp_path, wait) -> None:
    post = upload(client, auth, fixtures.jpeg(tmp_path).read_bytes()).get_json()
    problem = assert_problem(client.get(f"/api/v1/posts/{post['id']}?wait={wait}", headers=auth), 400)
    assert problem["errors"][0]["field"] == "wait"


def test_long_poll_returns_when_the_status_changes(client, auth, settings, tmp_path) -> None:
    post = upload(client, auth, fixtures.jpeg(tmp_path).read_bytes()).get_json()

    def finish_soon() -> None:
        time.sleep(0.5)
        with psycopg.connect(settings.database_url) as conn:
            conn.execute("UPDATE media SET status = 'failed', error = 'done'")

    threading.Thread(target=finish_soon).start()
    started = time.monotonic()
    body = client.get(f"/api/v1/posts/{post['id']}?wait=10", headers=auth).get_json()
    assert body["status"] == "failed" and body["error"] == "done"
    assert 0.4 < time.monotonic() - started < 5


@pytest.mark.slow
def test_slow_bodies_straight_to_gunicorn_take_half_the_threads_at_most_and_are_dropped(start_system) -> None:
    """Reached directly, the app reads upload bodies on request threads: one account may have
    UPLOAD_CONCURRENCY of them at once per worker, all together half its threads; a body that
    stops coming for BODY_TIMEOUT, or comes slower than 8 KiB/s after that, is a 408; and reads
    keep being answered meanwhile."""
    from test_proxy import read_times, slow_uploads

    system = start_system(
        WORKERS="1", WEB_CONCURRENCY="1", WEB_THREADS="8", BODY_TIMEOUT="3", READ_RATE_LIMIT="100000/minute"
    ).wait_ready()
    others = [system.sign_up(f"slow{n}") for n in range(5)]
    started = [slow_uploads(system.url, auth, 1, 20) for auth in others]  # 5 at once: half the threads are 4
    time.sleep(1)
    took = read_times(system.url, 2)
    assert max(took) < 1, sorted(took)[-3:]
    for thread in (t for ts, _ in started for t in ts):
        thread.join(timeout=40)
    everyone = [answer for _, found in started for answer in found]
    assert sorted(map(str, everyone)) == ["408"] * 4 + ["503"], everyone  # dropped soon after BODY_TIMEOUT, one refused
    threads, answers = slow_uploads(system.url, system.sign_up("eager"), 3, 20)
    for thread in threads:
        thread.join(timeout=40)
    assert sorted(map(str, answers)) == ["408", "408", "429"], answers  # the account's third at once


def test_a_post_of_bytes_already_processed_is_in_every_cached_feed_at_once(client, auth, settings, tmp_path) -> None:
    """The same bytes posted again complete at once, and nothing dropped the cached pages: the
    post showed in the anonymous feed 15 s later. It now reaches every tier as a processed one."""
    image = fixtures.jpeg(tmp_path).read_bytes()
    (earlier,) = seed(settings.database_url, 1, author="bob")
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(
            "UPDATE media SET sha256 = %s WHERE id = (SELECT media_id FROM posts WHERE id = %s)",
            (hashlib.sha256(image).digest(), earlier),
        )
    for _ in range(2):  # cached by now
        assert [item["id"] for item in client.get("/api/v1/posts").get_json()["items"]] == [earlier]
    again = upload(client, auth, image).get_json()
    assert again["status"] == "completed"
    assert [item["id"] for item in client.get("/api/v1/posts").get_json()["items"]] == [again["id"], earlier]
