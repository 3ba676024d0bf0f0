"""The media repository: media rows are the pipeline's durable jobs (`sql/queries/media.sql`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from memedroid.db import Connection
from memedroid.messages import Job
from memedroid.repositories.queries import queries


@dataclass(frozen=True)
class MediaRow:
    id: int
    sha256: bytes
    status: str
    error: str | None
    rejected: bool  # failed because of the content: the same bytes are refused at once
    attempts: int
    source_type: str
    request_id: str | None

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


@dataclass(frozen=True)
class Claim:
    """A job a worker holds under `lease_token`."""

    id: int
    sha256: bytes
    source_type: str
    source_bytes: int
    attempts: int
    request_id: str | None
    lease_token: str


@dataclass(frozen=True)
class Leased:
    """A job row locked by the finalizer while its lease still holds."""

    id: int
    sha256: bytes
    attempts: int
    request_id: str | None


@dataclass(frozen=True)
class Ended:
    """Where an attempt left a job: `completed`, `pending` again (another try), `deferred`
    (pending, the attempt not counted, for the janitor's next round), `failed`, or `discarded`
    (a late result: its lease had moved on)."""

    id: int
    status: str
    attempts: int = 0
    error: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Requeued:
    id: int
    sha256: str  # hex: the name of its raw upload


def insert_or_find(conn: Connection, sha256: bytes, source_type: str, size: int, request_id: str | None) -> tuple[MediaRow, bool]:
    """The media row for these bytes and whether this call created it. Concurrent uploads of
    the same bytes race safely on the unique hash."""
    while True:
        row = queries.media.insert_media(conn, sha256=sha256, source_type=source_type, source_bytes=size, request_id=request_id)
        if row is not None:
            return MediaRow(**row), True
        row = queries.media.get_media_by_sha256(conn, sha256=sha256)
        if row is not None:
            return MediaRow(**row), False
        # The row that conflicted was deleted (its last post went) before we could see it.


def requeue_failed(conn: Connection, ids: list[int]) -> list[Requeued]:
    """Fresh attempts for failed media."""
    return [Requeued(**row) for row in queries.media.requeue_failed_media(conn, ids=ids)]


def failed_ids(conn: Connection) -> list[int]:
    return [row["id"] for row in queries.media.list_failed_media_ids(conn)]


def backlog(conn: Connection) -> int:
    """Media accepted and not finished."""
    return int(queries.media.count_backlog(conn))


def count_by_status(conn: Connection) -> dict[str, int]:
    return {row["status"]: row["media"] for row in queries.media.count_media_by_status(conn)}


def mark_queued(conn: Connection, ids: list[int]) -> None:
    if ids:
        queries.media.mark_media_queued(conn, ids=ids)


def notify_jobs(conn: Connection, ids: list[int]) -> None:
    """Tell the nodes with media workers of these pending jobs (delivered on commit)."""
    if ids:
        queries.media.notify_jobs(conn, ids=ids)


@contextmanager
def jobs_notified(conn: Connection) -> Iterator[Callable[[float], list[int]]]:
    """While the block runs, `conn` (autocommit, not shared) hears of jobs other nodes could
    not queue: the block gets a function that waits up to that many seconds for their ids."""
    queries.media.listen_for_jobs(conn)

    def wait(seconds: float) -> list[int]:
        return [int(n) for note in conn.notifies(timeout=seconds) for n in note.payload.split(",") if n.isdigit()]

    try:
        yield wait
    finally:
        with suppress(psycopg.Error):
            queries.media.stop_listening(conn)


def to_enqueue(conn: Connection, requeue_seconds: float, max_count: int) -> list[Job]:
    """Pending jobs nobody has queued for `requeue_seconds`, oldest first."""
    rows = queries.media.list_media_to_enqueue(conn, requeue_seconds=requeue_seconds, max_count=max_count)
    return [Job(row["id"], row["request_id"]) for row in rows]


def claim(conn: Connection, media_id: int, lease_token: str, owner: str) -> Claim | None:
    row = queries.media.claim_media(conn, id=media_id, lease_token=lease_token, lease_owner=owner)
    return None if row is None else Claim(**row, lease_token=lease_token)


def heartbeat(conn: Connection, media_id: int, lease_token: str) -> bool:
    return bool(queries.media.heartbeat_media(conn, id=media_id, lease_token=lease_token))


def lock_lease(conn: Connection, media_id: int, lease_token: str) -> Leased | None:
    """The row, locked, while this lease still holds it."""
    row = queries.media.lock_leased_media(conn, id=media_id, lease_token=lease_token)
    return None if row is None else Leased(**row)


def complete(conn: Connection, media_id: int, **fields: Any) -> None:
    fields["variants"] = Jsonb(fields.get("variants") or {})
    queries.media.complete_media(conn, id=media_id, **fields)


def fail_or_retry(conn: Connection, media_id: int, error: str, permanent: bool, max_attempts: int) -> Ended:
    """End an attempt that did not succeed: failed for good when `permanent` (the content is
    rejected) or attempts are used up, pending again otherwise."""
    return Ended(
        **queries.media.fail_or_retry_media(conn, id=media_id, error=error, permanent=permanent, max_attempts=max_attempts)
    )


def hand_back(conn: Connection, media_id: int, lease_token: str) -> Ended | None:
    """Back to pending without counting the attempt; None when the lease no longer holds."""
    row = queries.media.hand_back_media(conn, id=media_id, lease_token=lease_token)
    return None if row is None else Ended(**row)


def release(conn: Connection, media_id: int, lease_token: str, error: str, max_attempts: int) -> Ended | None:
    """End an attempt whose worker died; None when the lease no longer holds."""
    row = queries.media.release_media(conn, id=media_id, lease_token=lease_token, error=error, max_attempts=max_attempts)
    return None if row is None else Ended(**row)


def expire_leases(
    conn: Connection, lease_seconds: float, reclaim_node: bool, node_prefix: str, live_owner: str, max_attempts: int,
    stuck_seconds: float,
) -> list[Ended]:  # fmt: skip
    """Processing rows whose heartbeat stopped, whose owner is a dead boot of this node, or that
    run for far too long: back to pending, or failed when out of attempts or stuck."""
    rows = queries.media.expire_media_leases(
        conn, lease_seconds=lease_seconds, reclaim_node=reclaim_node, node_prefix=node_prefix, live_owner=live_owner,
        max_attempts=max_attempts, stuck_seconds=stuck_seconds,
    )  # fmt: skip
    return [Ended(**row) for row in rows]


def hold_raw_file(conn: Connection, sha256: bytes) -> None:
    """Keep the orphan sweep off the raw file of these bytes until this transaction ends."""
    queries.media.hold_raw_file(conn, sha256=sha256)


def hold_orphan_raw_files(conn: Connection, hashes: list[str]) -> list[str]:
    """Of these raw files (hex names), those no upload holds, held until this transaction ends."""
    return [row["sha256"] for row in queries.media.hold_orphan_raw_files(conn, files=hashes)] if hashes else []


def live_raw_hashes(conn: Connection, hashes: list[str], failed_retention_seconds: float) -> set[str]:
    """Of these hashes (hex), those whose raw upload is still needed (unfinished, or failed lately)."""
    rows = queries.media.list_live_raw_hashes(conn, files=hashes, failed_retention_seconds=failed_retention_seconds)
    return {row["sha256"] for row in rows}


def live_leases(conn: Connection) -> set[str]:
    """Lease tokens of jobs being processed now."""
    return {row["lease_token"] for row in queries.media.list_live_leases(conn)}


def kept_hashes(conn: Connection) -> set[str]:
    """Hashes whose final files must be kept."""
    return {row["sha256"] for row in queries.media.list_kept_media_hashes(conn)}


@dataclass(frozen=True)
class Placement:
    """Where a media's files belong (`media`, `quarantine`, `gone`; None: it has none yet)
    and whether they are out of the public area now."""

    id: int
    sha256: str  # hex: the name of its raw upload
    path: str | None
    thumbnail_path: str | None
    quarantined: bool
    place: str | None

    @property
    def files(self) -> list[str]:
        return [name for name in (self.path, self.thumbnail_path) if name]


def unsettle(conn: Connection, media_id: int) -> None:
    """Note that a media's files may have to move (committed with the caller's change)."""
    queries.media.unsettle_media(conn, media_id=media_id)


def lock_unsettled(conn: Connection, max_count: int) -> list[Placement]:
    """Up to `max_count` media whose files may have to move, locked until the transaction
    ends, with where their files belong as of once they are locked."""
    ids = [row["id"] for row in queries.media.lock_unsettled_media(conn, max_count=max_count)]
    return [Placement(**row) for row in queries.media.get_media_places(conn, ids=ids)] if ids else []


def settled(conn: Connection, placed: list[Placement]) -> None:
    """These media's files are where they belong: record whether that is out of the public area."""
    for quarantined in (False, True):
        ids = [item.id for item in placed if item.place is not None and (item.place != "media") == quarantined]
        if ids:
            queries.media.set_media_quarantined(conn, ids=ids, quarantined=quarantined)
    queries.media.delete_unsettled_media(conn, ids=[item.id for item in placed])


def quarantined_since(conn: Connection, since: datetime) -> list[str]:
    """The names of the final files taken out of the public area since `since`."""
    rows = queries.media.list_quarantined_media(conn, since=since)
    return [name for row in rows for name in (row["path"], row["thumbnail_path"]) if name]
