"""The media repository: the durable job rows over `sql/queries/media.sql`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from memedroid.db import Connection, queries


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


def requeue_failed(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
    """Fresh attempts for failed media; the rows requeued (id, sha256 in hex)."""
    return list(queries.media.requeue_failed_media(conn, ids=ids))


def backlog(conn: Connection) -> int:
    return int(queries.media.count_backlog(conn))


def mark_queued(conn: Connection, ids: list[int]) -> None:
    if ids:
        queries.media.mark_media_queued(conn, ids=ids)


def claim(conn: Connection, media_id: int, lease_token: str, owner: str) -> Claim | None:
    row = queries.media.claim_media(conn, id=media_id, lease_token=lease_token, lease_owner=owner)
    return None if row is None else Claim(**row, lease_token=lease_token)


def heartbeat(conn: Connection, media_id: int, lease_token: str) -> bool:
    return bool(queries.media.heartbeat_media(conn, id=media_id, lease_token=lease_token))


def lock_lease(conn: Connection, media_id: int, lease_token: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = queries.media.lock_leased_media(conn, id=media_id, lease_token=lease_token)
    return row


def complete(conn: Connection, media_id: int, **fields: Any) -> None:
    fields["variants"] = Jsonb(fields.get("variants") or {})
    queries.media.complete_media(conn, id=media_id, **fields)


def fail_or_retry(conn: Connection, media_id: int, error: str, permanent: bool, max_attempts: int) -> dict[str, Any]:
    row: dict[str, Any] = queries.media.fail_or_retry_media(
        conn, id=media_id, error=error, permanent=permanent, max_attempts=max_attempts
    )
    return row


def hand_back(conn: Connection, media_id: int, lease_token: str) -> dict[str, Any] | None:
    """Back to pending without counting the attempt; None when the lease no longer holds."""
    row: dict[str, Any] | None = queries.media.hand_back_media(conn, id=media_id, lease_token=lease_token)
    return row


def release(conn: Connection, media_id: int, lease_token: str, error: str, max_attempts: int) -> dict[str, Any] | None:
    """End an attempt whose worker died; None when the lease no longer holds."""
    row: dict[str, Any] | None = queries.media.release_media(
        conn, id=media_id, lease_token=lease_token, error=error, max_attempts=max_attempts
    )
    return row
