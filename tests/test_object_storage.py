"""Media in an S3-compatible object store (STORAGE_URL=s3://…): the backend against a real S3
protocol server (moto's, over HTTP, with the real boto3), and the whole system on it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import fixtures
import psycopg
import pytest
import requests
from helpers import free_port, wait_for
from stores import PREFIX, bucket_keys, s3
from system import System

from memedroid.errors import PayloadTooLarge, ServiceUnavailable
from memedroid.settings import Settings
from memedroid.storage import open_storage
from memedroid.storage.s3 import PART_BYTES, ObjectStorage


@pytest.fixture
def objects(settings: Settings, s3_endpoint: str, bucket: str) -> ObjectStorage:
    storage = open_storage(settings.replace(storage_url=f"s3://{bucket}/{PREFIX}", s3_endpoint_url=s3_endpoint)).ensure()
    assert isinstance(storage, ObjectStorage)
    return storage


def stream(objects: ObjectStorage, data: bytes, chunk: int = 64 * 1024, limit: int = 1 << 30) -> Any:
    sink = objects.upload_sink(limit)
    for start in range(0, len(data), chunk):
        sink.write(data[start : start + chunk])
    return sink.finish()


@pytest.mark.parametrize("size", [1000, PART_BYTES * 2 + 12345], ids=["one put", "multipart"])
def test_an_upload_streams_to_the_store_and_is_kept_under_its_hash(
    objects: ObjectStorage, s3_endpoint: str, bucket: str, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    upload = stream(objects, data)
    assert upload.size == size and upload.head == data[:4096]
    objects.keep_raw(upload)
    sha = upload.sha256.hex()
    assert set(bucket_keys(s3_endpoint, bucket)) == {f"{PREFIX}/raw/{sha}"}  # the temporary key is gone
    assert objects.raw_exists(sha) and not objects.raw_exists("0" * 64)
    assert objects.fetch_raw(sha, tmp_path).read_bytes() == data
    assert objects.area_bytes("raw") == size
    objects.drop_raw(sha)
    assert bucket_keys(s3_endpoint, bucket) == {}


def test_a_refused_upload_leaves_nothing(objects: ObjectStorage, s3_endpoint: str, bucket: str) -> None:
    with pytest.raises(PayloadTooLarge):
        stream(objects, os.urandom(PART_BYTES + 10), limit=PART_BYTES + 5)
    client = s3(s3_endpoint)
    assert bucket_keys(s3_endpoint, bucket) == {}
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # the parts were aborted
    stream(objects, b"dropped").drop()
    assert bucket_keys(s3_endpoint, bucket) == {}


def test_finished_files_carry_their_type_and_are_immutable(
    objects: ObjectStorage, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "out.webp"
    source.write_bytes(b"RIFF....WEBP")
    name = objects.media_name("ab" * 32, ".webp")
    objects.place(source, name)
    client = s3(s3_endpoint)
    head = client.head_object(Bucket=bucket, Key=f"{PREFIX}/media/{name}")
    assert head["ContentType"] == "image/webp" and head["CacheControl"] == "public, max-age=31536000, immutable"
    assert list(objects.old_files("media", 3600)) == []
    assert objects.fetch_media(name, tmp_path / "copy").read_bytes() == b"RIFF....WEBP"
    objects.remove_media([name], "ab" * 32)
    assert bucket_keys(s3_endpoint, bucket) == {}


@pytest.mark.parametrize(("store_clock", "grace", "old"), [(-3600, 0, False), (3600, 600, True), (0, 600, False)])
def test_files_are_aged_by_the_stores_clock(
    objects: ObjectStorage, tmp_path: Path, store_clock: int, grace: int, old: bool
) -> None:
    """How old a file is, is for the store's clock to say (the Date of its listing, the clock
    of its LastModified), not this node's: a node whose clock runs ahead of the store's must
    not take an upload stored a moment ago for an old one. The listing's Date is moved by
    `store_clock` seconds; the answer follows it whatever this node's clock says."""
    source = tmp_path / "out.webp"
    source.write_bytes(b"RIFF....WEBP")
    name = objects.media_name("cd" * 32, ".webp")
    objects.place(source, name)

    def store_time(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ResponseMetadata"]["HTTPHeaders"]["date"] = format_datetime(
            datetime.now(UTC) + timedelta(seconds=store_clock), usegmt=True
        )

    objects.client.meta.events.register("after-call.s3.ListObjectsV2", store_time)
    assert list(objects.old_files("media", grace)) == ([name] if old else [])


def test_an_unreachable_store_is_a_503_and_says_so(settings: Settings, tmp_path: Path) -> None:
    dead = open_storage(settings.replace(storage_url="s3://nowhere", s3_endpoint_url=f"http://127.0.0.1:{free_port()}"))
    assert not dead.writable()
    sink = dead.upload_sink(1 << 20)
    sink.write(b"x" * 100)  # buffered: nothing sent yet
    with pytest.raises(ServiceUnavailable) as refused:
        sink.finish()
    assert refused.value.retry_after == 30


# --- the whole system on the object store -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_the_pipeline_reads_and_writes_the_object_store(
    start_system: Callable[..., System], s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    system = start_system(WORKERS="1").wait_ready()
    auth = system.sign_up()
    posts = [
        system.upload(auth, path).json()
        for path in (fixtures.jpeg(tmp_path, width=320, height=200), fixtures.animated_gif(tmp_path))
    ]
    done = [system.wait_done(auth, post["id"]) for post in posts]
    assert [post["status"] for post in done] == ["completed", "completed"], done
    for post in done:
        for url in (post["media"]["url"], post["media"]["thumbnail_url"]):
            answer = requests.get(url, timeout=10)
            assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stored = bucket_keys(s3_endpoint, bucket)
    assert not any(key.startswith(f"{PREFIX}/raw/") for key in stored)  # a completed media's upload goes
    assert len([key for key in stored if key.startswith(f"{PREFIX}/media/")]) == 4
    assert not [p for p in system.storage.rglob("*") if p.is_file()]  # nothing on the local disk
    assert system.http.get(f"{system.url}/media/{done[0]['media']['url'].rsplit('/media/', 1)[1]}").status_code == 404

    # Deleting the posts deletes the objects.
    for post in done:
        assert system.http.delete(f"{system.url}/api/v1/posts/{post['id']}", headers=auth).status_code == 204
    wait_for(lambda: bucket_keys(s3_endpoint, bucket) == {}, 10, "the objects to go")


@pytest.mark.slow
def test_an_unreachable_store_refuses_uploads_with_503_and_keeps_nothing(
    start_system: Callable[..., System], tmp_path: Path
) -> None:
    env = {"STORAGE_URL": "s3://nowhere/x", "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    system = start_system(WORKERS="1", **env).wait_ready()
    answer = system.upload(system.sign_up(), fixtures.jpeg(tmp_path))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30", answer.text
    assert system.http.get(f"{system.url}/api/v1/posts").json()["items"] == []


@pytest.mark.slow
def test_jobs_wait_out_a_store_outage_without_spending_attempts(
    tmp_path: Path, database_url: str, redis_url: str, bucket: str
) -> None:
    """Node a (HTTP) accepts an upload while no worker runs; the store then goes away and node b
    (the pipeline) starts: its worker cannot read the upload, and the job waits, its attempt
    not counted, round after round, until the store is back."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    store = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    store.start()  # moto keeps its buckets in the process: the test's bucket is here too
    shared = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "STORAGE_URL": f"s3://{bucket}/{PREFIX}"}
    shared |= {"S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "JANITOR_INTERVAL": "1", "MAX_ATTEMPTS": "2"}
    nodes = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
        api = System({**shared, "NODE_NAME": "a", "NODE_ROLE": "http"}, tmp_path / "a")
        nodes.append(api)
        wait_for(api.answers, 60, "node a")
        auth = api.sign_up()
        posted = api.upload(auth, fixtures.jpeg(tmp_path, width=320, height=200)).json()
        store.stop()
        nodes.append(System({**shared, "NODE_NAME": "b", "NODE_ROLE": "pipeline", "WORKERS": "1"}, tmp_path / "b"))
        worker_node = nodes[1]
        wait_for(lambda: len(worker_node.events("job_processed", outcome="later")) >= 3, 60, "three rounds of waiting")
        assert api.post(auth, posted["id"])["status"] == "pending"
        store = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        store.start()
        post = api.wait_done(auth, posted["id"], timeout=60)
        assert post["status"] == "completed", post
        with psycopg.connect(database_url) as conn:
            attempts = conn.execute("SELECT attempts FROM media").fetchone()[0]  # type: ignore[index]
        assert attempts == 1  # the outage spent none
    finally:
        for node in nodes:
            node.kill_everything()
        store.stop()


@pytest.mark.slow
def test_a_local_store_moves_into_a_bucket_resumably_and_verified(
    start_system: Callable[..., System], s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    local = start_system(WORKERS="1").wait_ready()
    auth = local.sign_up()
    post = local.wait_done(auth, local.upload(auth, fixtures.jpeg(tmp_path, width=320, height=200)).json()["id"])
    failed = local.upload(auth, fixtures.write(tmp_path, "bad.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 64)).json()
    assert local.wait_done(auth, failed["id"])["status"] == "failed"  # its upload is kept a while: it moves too
    local.stop()
    env = {
        **os.environ,
        "DATABASE_URL": local.env["DATABASE_URL"],
        "STORAGE_DIR": local.env["STORAGE_DIR"],
        "LOG_LEVEL": "WARNING",
    }
    move = [sys.executable, "-m", "memedroid", "migrate-storage", "--to", f"s3://{bucket}/moved", "--endpoint", s3_endpoint]

    first = subprocess.run(move, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "copied 3 files" in first.stdout, first.stderr
    again = subprocess.run(move, env=env, capture_output=True, text=True, timeout=60)
    assert "copied 0 files" in again.stdout and "3 there already" in again.stdout
    client = s3(s3_endpoint)
    thumb = f"moved/media/{post['media']['thumbnail_url'].rsplit('/media/', 1)[1]}"
    client.put_object(Bucket=bucket, Key=thumb, Body=b"damaged")  # the copy is checked, not trusted
    fixed = subprocess.run(move, env=env, capture_output=True, text=True, timeout=60)
    assert "copied 1 files" in fixed.stdout
    assert set(bucket_keys(s3_endpoint, bucket)) == {
        f"moved/{p.relative_to(local.storage)}" for p in local.files("raw") + local.files("media")
    }

    # The same database on the bucket: the post shows, its files come from the store.
    media_url = f"{s3_endpoint}/{bucket}/moved/media"
    moved = start_system(WORKERS="1", STORAGE_URL=f"s3://{bucket}/moved", S3_ENDPOINT_URL=s3_endpoint, MEDIA_URL=media_url)
    shown = moved.wait_ready().post(auth, post["id"])
    assert shown["media"]["url"].startswith(media_url)
    assert client.get_object(Bucket=bucket, Key=f"moved/media/{shown['media']['url'].rsplit('/media/', 1)[1]}")["Body"].read()


def test_remove_orphans_lists_the_bucket_and_spares_what_rows_need(settings: Settings, s3_endpoint: str, bucket: str) -> None:
    client = s3(s3_endpoint)
    orphans = [f"{PREFIX}/media/ab/cd/{'ab' * 32}.jpg", f"{PREFIX}/raw/{'cd' * 32}", f"{PREFIX}/raw/.upload-abandoned"]
    for key in [*orphans, "elsewhere/raw/not-ours"]:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    time.sleep(1)  # older than the store's now, which its Date gives to the whole second
    env = {**os.environ, "DATABASE_URL": settings.database_url, "STORAGE_DIR": str(settings.storage_dir), "LOG_LEVEL": "WARNING"}
    env |= {"STORAGE_URL": f"s3://{bucket}/{PREFIX}", "S3_ENDPOINT_URL": s3_endpoint, "ORPHAN_GRACE_SECONDS": "0"}
    command = [sys.executable, "-m", "memedroid", "remove-orphans"]
    listed = subprocess.run([*command, "--dry-run"], env=env, capture_output=True, text=True, timeout=60)
    assert "orphan_media_deleted=1" in listed.stdout and "orphan_raw_deleted=2" in listed.stdout, listed.stderr
    assert len(bucket_keys(s3_endpoint, bucket)) == 4  # a dry run deletes nothing
    removed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert set(bucket_keys(s3_endpoint, bucket)) == {"elsewhere/raw/not-ours"}
