"""More than one node on one database: a node with HTTP alone hands its uploads to the nodes
with media workers (PostgreSQL NOTIFY), and each node's leases are its own (NODE_NAME)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fixtures
import psycopg
import pytest
import redis
from helpers import rerank, wait_for
from stores import bucket_keys
from system import System

from memedroid.db import Database
from memedroid.messages import Job
from memedroid.services.jobs import JobListener, JobQueue
from memedroid.settings import Settings
from memedroid.transport import JobChannel

pytestmark = pytest.mark.slow


@pytest.fixture
def nodes(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[dict[str, System]]:
    """Node a serves HTTP alone, node b runs the media pipeline alone; one database, one
    Redis, one storage folder (a shared filesystem, as object storage will be)."""
    redis.Redis.from_url(redis_url).flushdb()
    shared = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "STORAGE_DIR": str(tmp_path / "storage")}
    shared["JANITOR_INTERVAL"] = "3600"  # no sweep hands jobs over: the notification must
    started: dict[str, System] = {}
    try:
        for name, role in (("a", "http"), ("b", "pipeline")):
            (tmp_path / name).mkdir()
            started[name] = System({**shared, "NODE_NAME": f"node-{name}", "NODE_ROLE": role, "WORKERS": "1"}, tmp_path / name)
        yield started
    finally:
        for system in started.values():
            if system.process.poll() is None:
                system.kill_everything()


def test_a_node_with_http_alone_hands_its_uploads_to_a_node_with_workers(nodes: dict[str, System], tmp_path: Path) -> None:
    api, media = nodes["a"], nodes["b"]
    wait_for(api.answers, 60, "node a's HTTP")
    wait_for(lambda: media.role("worker") and media.role("finalizer") and media.events("supervisor_started"), 60, "node b")
    assert api.role("worker") == api.role("finalizer") == [] and media.role("http") == []

    auth = api.sign_up()
    posted = api.upload(auth, fixtures.jpeg(tmp_path, width=320, height=200))
    assert posted.status_code == 202, posted.text
    post = api.wait_done(auth, posted.json()["id"], timeout=30)
    assert post["status"] == "completed", post
    assert media.events("job_started")  # node b's worker took it
    assert api.fetch(post["media"]["url"])  # node a serves what node b made, from the shared folder

    # Node b's supervisor is killed outright and comes back: its earlier boot's lease is its
    # own to take back at once, and uploads accepted meanwhile by node a are not lost.
    media.kill_everything()
    waiting = api.upload(auth, fixtures.jpeg(tmp_path, "second.jpg", 300, 200, seed="green")).json()
    media.start()
    assert api.wait_done(auth, waiting["id"], timeout=60)["status"] == "completed"


def test_two_nodes_share_the_work_and_one_finishes_what_the_other_dropped(
    tmp_path: Path, database_url: str, redis_url: str, s3_endpoint: str, bucket: str
) -> None:
    """The drill: two full nodes, one database, one bucket. 200 uploads spread over both HTTP
    servers; each job is claimed once but for those a killed node held; node b's whole process
    tree is killed mid-run, and node a finishes every accepted upload once b's leases expire;
    after a janitor round, the bucket holds exactly the completed media's files."""
    shared = {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "STORAGE_URL": f"s3://{bucket}/drill",
        "S3_ENDPOINT_URL": s3_endpoint, "MEDIA_URL": f"{s3_endpoint}/{bucket}/drill/media", "WORKERS": "1",
        "LEASE_SECONDS": "4", "HEARTBEAT_SECONDS": "1", "JANITOR_INTERVAL": "1", "REPOSTS": "allow",
    }  # fmt: skip
    images = [fixtures.jpeg(tmp_path, f"{i}.jpg", width=64 + i, height=48) for i in range(200)]
    nodes = {}
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            nodes[name] = System({**shared, "NODE_NAME": name}, tmp_path / name).wait_ready()
        a, b = nodes["a"], nodes["b"]
        auth = a.sign_up()
        accepted = []
        for i, image in enumerate(images):
            node = a if i % 2 or i >= 100 else b  # b takes every other upload until it dies
            if i == 100:
                wait_for(lambda: b.events("job_finalized"), 30, "node b to finish some work")
                b.kill_everything()  # mid-run: jobs queued on it, maybe one in its worker
            answer = node.upload(auth, image)
            assert answer.status_code == 202, answer.text
            accepted.append(answer.json()["id"])
        done = [a.wait_done(auth, post_id, timeout=120) for post_id in accepted]
        assert {post["status"] for post in done} == {"completed"}

        started = sorted(
            (claim["time"], claim["media_id"], name) for name, node in nodes.items() for claim in node.events("job_started")
        )
        claims: dict[int, list[str]] = {}  # media id -> the nodes that claimed it, in order
        for _time, media_id, name in started:
            claims.setdefault(media_id, []).append(name)
        assert len(claims) == 200
        twice = {media: by for media, by in claims.items() if len(by) > 1}
        assert all(by[0] == "b" and set(by[1:]) == {"a"} for by in twice.values()), twice  # only b's dropped work
        assert {by[0] for by in claims.values()} == {"a", "b"}  # both nodes worked

        settings = Settings(database_url=database_url, storage_url=f"s3://{bucket}/drill", s3_endpoint_url=s3_endpoint)
        rerank(settings.replace(orphan_grace_seconds=0, storage_dir=tmp_path / "janitor"))  # one janitor round
        with psycopg.connect(database_url) as conn:
            files = {name for row in conn.execute("SELECT path, thumbnail_path FROM media") for name in row}
        assert set(bucket_keys(s3_endpoint, bucket)) == {f"drill/media/{name}" for name in files}  # no orphan, no upload left
    finally:
        for node in nodes.values():
            if node.process.poll() is None:
                node.kill_everything()


def test_a_job_no_node_can_take_is_told_of_once(settings: Settings) -> None:
    """A node's queue is full: the job is told to the nodes with workers, this one's listener
    included, and a listener that cannot take it either does not tell of it again."""
    db = Database(settings)
    channel = JobChannel(capacity=1)
    channel.offer([Job(1)])  # full
    listener = JobListener(db, JobQueue(db, channel))
    listener.start()
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            listening = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN memedroid_jobs%'"
            wait_for(lambda: conn.execute(listening).fetchone()[0], 10, "the listener to listen")  # type: ignore[index]
            conn.execute("LISTEN memedroid_jobs")
            assert JobQueue(db, channel).offer([Job(2)]) == []
            heard = [note.payload for note in conn.notifies(timeout=2)]
    finally:
        listener.stop()
        db.close()
    assert heard == ["2"]
