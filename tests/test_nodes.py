"""More than one node on one database: a node with HTTP alone hands its uploads to the nodes
with media workers (PostgreSQL NOTIFY), and each node's leases are its own (NODE_NAME)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fixtures
import pytest
import redis
from helpers import wait_for
from system import System

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
