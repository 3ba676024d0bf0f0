"""The janitor's and the finalizer's recovery rules, on rows set up in a real PostgreSQL."""

from __future__ import annotations

import multiprocessing
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers import metric, wait_for
from psycopg.rows import dict_row
from stores import Store, both_stores, env_of, in_bucket, s3, stored_files

from memedroid.db import Database
from memedroid.messages import Output, Result
from memedroid.pipeline.finalizer import Finalizer
from memedroid.pipeline.janitor import LOCK_KEY, Janitor, lease_owner
from memedroid.settings import Settings
from memedroid.storage import LocalStorage, Storage, open_storage
from memedroid.transport import JobChannel, Pipeline, Slot

NODE = "node-b"  # this test's supervisor; "node-a" is another node, maybe on the same host


def processing_row(
    conn: psycopg.Connection, n: int, owner: str, heartbeat: str, updated: str, attempts: int, token: str | None = None
) -> int:
    return int(
        conn.execute(
            "INSERT INTO media (sha256, status, attempts, lease_token, lease_owner, heartbeat_at, updated_at, source_type,"
            " source_bytes) VALUES (sha256(%s::bytea), 'processing', %s, %s, %s, now() - %s::interval, now() - %s::interval,"
            " 'jpeg', 1) RETURNING id",
            (str(n).encode(), attempts, token or str(uuid.uuid4()), owner, heartbeat, updated),
        ).fetchone()[0]
    )


def test_janitor_requeues_expired_leases_and_fails_stuck_or_exhausted_jobs(settings: Settings) -> None:
    settings = settings.replace(lease_seconds=60, stuck_after=1800, max_attempts=3, node_name=NODE)
    with psycopg.connect(settings.database_url) as conn:
        expired = processing_row(conn, 1, "elsewhere/a", "2 minutes", "2 minutes", attempts=1)
        exhausted = processing_row(conn, 2, "elsewhere/a", "2 minutes", "2 minutes", attempts=3)
        stuck = processing_row(conn, 3, "elsewhere/a", "1 second", "1 hour", attempts=1)
        alive_elsewhere = processing_row(conn, 4, "elsewhere/b", "1 second", "1 second", attempts=1)
        dead_boot_here = processing_row(conn, 5, f"{NODE}/oldboot", "1 second", "1 second", attempts=1)
        alive_here = processing_row(conn, 6, f"{NODE}/thisboot", "1 second", "1 second", attempts=1)
        other_node = processing_row(conn, 9, "node-a/oldboot", "1 second", "1 second", attempts=1)
    jobs = JobChannel(capacity=10)
    db = Database(settings)
    try:
        janitor = Janitor(settings, db, LocalStorage(settings.storage_dir).ensure(), jobs, lease_owner(NODE, "thisboot"))
        actions = janitor.tick()
    finally:
        db.close()
    assert actions["lease_expired_requeued"] == 2 and actions["lease_expired_failed"] == 2
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        rows = {r["id"]: r for r in conn.execute("SELECT id, status, error, lease_token FROM media")}
    assert rows[expired]["status"] == rows[dead_boot_here]["status"] == "pending"
    assert rows[exhausted]["status"] == "failed" and "interrupted too many times" in rows[exhausted]["error"]
    assert rows[stuck]["status"] == "failed" and "took too long" in rows[stuck]["error"]
    assert rows[alive_elsewhere]["status"] == rows[alive_here]["status"] == "processing"
    assert rows[other_node]["status"] == "processing"  # another node's leases run out, whatever host it is on
    assert rows[expired]["lease_token"] is None
    assert sorted(job.media_id for job in iter(lambda: jobs.take(timeout=0), None)) == sorted([expired, dead_boot_here])


def test_work_folders_of_ended_leases_go_at_the_next_tick(settings: Settings) -> None:
    settings = settings.replace(orphan_grace_seconds=3600)
    live_token = str(uuid.uuid4())
    with psycopg.connect(settings.database_url) as conn:
        processing_row(conn, 8, f"{NODE}/thisboot", "1 second", "1 second", attempts=1, token=live_token)
    storage = LocalStorage(settings.storage_dir).ensure()
    live, ended = storage.work_dir(live_token), storage.work_dir(str(uuid.uuid4()))
    (ended / "rendition.jpg").write_bytes(b"left by a killed worker")
    db = Database(settings)
    try:
        actions = Janitor(settings, db, storage, None, f"{NODE}/thisboot").tick()
    finally:
        db.close()
    assert actions["orphan_tmp_deleted"] == 1
    assert live.exists() and not ended.exists()  # no grace period for a lease known to be over


def finished_work(storage: Storage, media_id: int, lease_token: str) -> Result:
    """A worker's result for a completed image, its files in a work folder."""
    work = storage.work_dir(lease_token)
    (work / "rendition.jpg").write_bytes(b"a rendition")
    (work / "thumbnail.jpg").write_bytes(b"a thumbnail")
    return Result(
        media_id=media_id, lease_token=lease_token, request_id="r", attempt=1, source_type="jpeg", outcome="completed",
        duration_ms=1.0,
        kind="image", mime="image/jpeg", width=1, height=1, rendition=Output(str(work / "rendition.jpg"), ".jpg"),
        thumbnail=Output(str(work / "thumbnail.jpg"), ".thumb.jpg"), work_dir=str(work),
    )  # fmt: skip


@contextmanager
def finalizer(settings: Settings) -> Iterator[Finalizer]:
    context = multiprocessing.get_context("spawn")
    finalizer = Finalizer(settings, Pipeline.create(context, 10), Slot(context))
    try:
        yield finalizer
    finally:
        finalizer.db.close()


def media_state(settings: Settings, media_id: int) -> tuple[str, int, str | None]:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute("SELECT status, attempts, lease_token::text FROM media WHERE id = %s", (media_id,)).fetchone()
    assert row is not None
    return row


@both_stores
def test_a_late_result_is_discarded_and_touches_no_final_file(settings: Settings, store: Store) -> None:
    settings = store.settings(settings)
    live_token = str(uuid.uuid4())
    with psycopg.connect(settings.database_url) as conn:
        media_id = processing_row(conn, 7, lease_owner(NODE, "x"), "1 second", "1 second", attempts=2, token=live_token)
    late = finished_work(open_storage(settings).ensure(), media_id, str(uuid.uuid4()))  # the expired lease's
    discarded = metric("memedroid_jobs_total", kind="jpeg", outcome="discarded")
    with finalizer(settings) as finalizing:
        finalizing.finalize(late)
    assert media_state(settings, media_id) == ("processing", 2, live_token)  # the live attempt still owns it
    assert not Path(late.work_dir or "").exists() and stored_files(env_of(settings), "media") == []
    assert metric("memedroid_jobs_total", kind="jpeg", outcome="discarded") == discarded + 1


@both_stores
def test_files_the_store_cannot_take_wait_for_it_without_spending_an_attempt(settings: Settings, store: Store) -> None:
    """The store is gone when the finalizer places a result's files: the job goes back to
    pending with its attempt given back (the janitor offers it again), and no file is half there."""
    settings = store.settings(settings)
    token = str(uuid.uuid4())
    with psycopg.connect(settings.database_url) as conn:
        media_id = processing_row(conn, 10, lease_owner(NODE, "x"), "1 second", "1 second", attempts=1, token=token)
    storage = open_storage(settings).ensure()
    result = finished_work(storage, media_id, token)
    deferred = metric("memedroid_jobs_total", kind="jpeg", outcome="deferred")
    with finalizer(settings) as finalizing:
        if isinstance(storage, LocalStorage):
            shutil.rmtree(storage.media)
            storage.media.write_bytes(b"")  # where the folder was: any write into it fails
        else:
            s3(settings.s3_endpoint_url).delete_bucket(Bucket=(in_bucket(settings.storage_url) or ("", ""))[0])
        finalizing.finalize(result)
    assert media_state(settings, media_id) == ("pending", 0, None)
    assert metric("memedroid_jobs_total", kind="jpeg", outcome="deferred") == deferred + 1
    if isinstance(storage, LocalStorage):
        assert storage.media.read_bytes() == b""
    assert not Path(result.work_dir or "").exists()  # the next attempt starts afresh


@both_stores
def test_a_file_the_store_lacks_is_not_found_rather_than_an_outage(settings: Settings, store: Store, tmp_path: Path) -> None:
    """The worker tells a missing upload (a retry, then a failure) from an unreachable store
    (the job waits) by this, in one request."""
    storage = open_storage(store.settings(settings)).ensure()
    with pytest.raises(FileNotFoundError):
        storage.fetch_raw("0" * 64, tmp_path)


def session_alive(settings: Settings, pid: int) -> bool:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None


def test_one_janitor_acts_at_a_time_across_nodes(settings: Settings) -> None:
    """Another node's janitor holds the lock: this one's round does nothing, and acts once
    the lock is free."""
    settings = settings.replace(lease_seconds=60, node_name=NODE)
    with psycopg.connect(settings.database_url) as conn:
        expired = processing_row(conn, 11, "node-a/gone", "2 minutes", "2 minutes", attempts=1)
    db = Database(settings)
    try:
        janitor = Janitor(settings, db, LocalStorage(settings.storage_dir).ensure(), None, lease_owner(NODE, "thisboot"))
        with psycopg.connect(settings.database_url, autocommit=True) as other:
            assert other.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone() == (True,)
            assert janitor.tick() == {}
            assert media_state(settings, expired)[0] == "processing"
            holder = other.info.backend_pid
        wait_for(lambda: not session_alive(settings, holder), 10, "the other session to end")  # its backend exits after the close
        assert janitor.tick()["lease_expired_requeued"] == 1  # the other session ended: its lock went
    finally:
        db.close()
    assert media_state(settings, expired)[0] == "pending"
