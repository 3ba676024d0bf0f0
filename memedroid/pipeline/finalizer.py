"""The finalizer process: the single writer of end states.

For each result: lock the row if the worker's lease still holds it (else the result is late
and discarded), move the outputs into `storage/media/` (atomic renames), record the end state
in the same transaction, then delete the raw upload and invalidate cached feeds. The database
says `completed` only once the files are in place.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from memedroid import metrics
from memedroid.cache import Cache
from memedroid.db import Connection
from memedroid.errors import DatabaseBusy, ServiceUnavailable
from memedroid.logs import request_id_var
from memedroid.messages import Job, Result
from memedroid.pipeline.process import PipelineProcess
from memedroid.repositories import hashes, media, posts, ranks
from memedroid.repositories.media import Ended
from memedroid.services import quarantine
from memedroid.settings import Settings
from memedroid.transport import Pipeline, Slot

log = logging.getLogger(__name__)

DRAIN_POLL = 0.5
RETRY_PAUSE = 1.0
BUSY_TRIES = 3  # times a result waits DB_LOCK_TIMEOUT for its row before it is left to the lease's expiry


def run(settings: Settings, ready: Callable[[], None], pipeline: Pipeline, slot: Slot) -> None:
    """Child-process entry point."""
    Finalizer(settings, pipeline, slot).run(ready)


class Finalizer(PipelineProcess):
    def __init__(self, settings: Settings, pipeline: Pipeline, slot: Slot) -> None:
        super().__init__(settings, pipeline, slot)
        self.cache = Cache.from_settings(settings)

    def run(self, ready: Callable[[], None]) -> None:
        """Finalize results until told to stop, then drain what is already waiting. The slot
        tells the supervisor that this process is alive and which result it holds (if it dies
        holding one, the supervisor hands that job back)."""
        signal.signal(signal.SIGTERM, self._on_term)
        ready()
        log.info("finalizer ready", extra={"event": "finalizer_ready"})
        while True:
            self.slot.alive()
            result = self.pipeline.results.take(timeout=DRAIN_POLL)
            if result is None:
                if self.stopping:
                    break
                continue
            self.slot.alive(took=True)
            self.slot.busy(result.media_id, result.lease_token)
            self._finalize_until_done(result)
            self.slot.idle()
        self.db.close()
        log.info("finalizer stopped", extra={"event": "finalizer_stopped"})

    def _on_term(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _finalize_until_done(self, result: Result) -> None:
        """Finalize `result`, waiting out a database that is away. A row another session keeps
        locked (past DB_LOCK_TIMEOUT, a few times over) is left: the job's lease expires and it
        is processed again once the row is free, while the results behind this one go on."""
        token = request_id_var.set(result.request_id)
        busy = 0
        try:
            while True:
                try:
                    self.finalize(result)
                    return
                except DatabaseBusy:
                    busy += 1
                    if busy >= BUSY_TRIES:
                        self._drop(result)
                        return
                    self.slot.alive()
                except ServiceUnavailable:
                    if self.stopping:
                        return  # the lease will expire; the janitor retries the job
                    log.warning(
                        "database unavailable; will retry", extra={"event": "finalize_deferred", "media_id": result.media_id}
                    )
                    time.sleep(RETRY_PAUSE)
                    self.slot.alive()
        finally:
            request_id_var.reset(token)

    def _drop(self, result: Result) -> None:
        if result.work_dir:
            self.storage.remove_tree(Path(result.work_dir))
        log.warning(
            "result dropped: its row stays locked", extra={"event": "finalize_skipped_locked", "media_id": result.media_id}
        )

    def finalize(self, result: Result) -> None:
        started = time.monotonic()
        with self.db.transaction() as conn:
            row = media.lock_lease(conn, result.media_id, result.lease_token)
            if row is None:
                ended = Ended(result.media_id, "discarded")
            elif result.outcome == "completed":
                ended = self._complete(conn, row.sha256.hex(), result)
            elif result.outcome == "later":
                ended = self._defer(conn, result, result.error or "the storage failed")
            else:
                error = result.error or "processing failed"
                ended = media.fail_or_retry(conn, row.id, error, result.outcome == "failed", self.settings.max_attempts)
            post_ids = posts.ids_by_media(conn, result.media_id)
        if result.work_dir:
            self.storage.remove_tree(Path(result.work_dir))
        status = ended.status
        metrics.JOBS.labels(result.source_type, status).inc()
        if status in ("completed", "failed"):
            self.cache.bump_feed_version()  # first: a reader told `completed` finds it listed
        if status == "completed" and row is not None:
            self.storage.drop_raw(row.sha256.hex())  # a failed one is kept a while
            quarantine.settle(self.db, self.storage)  # its posts may all have been removed meanwhile
        elif status == "pending":
            self.jobs.offer([Job(result.media_id, result.request_id)])
        log.log(
            logging.ERROR if status == "failed" else logging.INFO,
            "job finalized" if status != "discarded" else "late result discarded",
            extra={
                "event": "job_finalized" if status != "discarded" else "late_result_discarded",
                "media_id": result.media_id,
                "post_id": post_ids[0] if post_ids else None,
                "post_ids": post_ids,
                "attempt": result.attempt,
                "status": status,
                "error": ended.error,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )

    def _complete(self, conn: Connection, sha256_hex: str, result: Result) -> Ended:
        """Complete a processed media; fail one that looks like a banned media, and with
        REPOSTS=reject a near-duplicate of one that a post shows already."""
        if hashes.banned(conn, result.fingerprints):
            return media.fail_or_retry(conn, result.media_id, hashes.BANNED, True, self.settings.max_attempts)
        similar = result.similar
        if similar is None:  # the worker could not search
            similar = hashes.near(conn, result.fingerprints, exclude=result.media_id)
        if self.settings.reposts == "reject" and similar and (original := hashes.first_post(conn, list(similar))):
            return media.fail_or_retry(conn, result.media_id, f"a repost of post {original}", True, self.settings.max_attempts)
        return self._place_and_complete(conn, sha256_hex, result, similar)

    def _defer(self, conn: Connection, result: Result, error: str) -> Ended:
        """The storage failed (a full disk, an object store away): the job goes back to
        pending with its attempt not counted, for the janitor's next round rather than at once
        (an outage may last), so that no outage, however long, fails an upload."""
        log.error("storage unavailable", extra={"event": "storage_error", "media_id": result.media_id, "error": error})
        media.hand_back(conn, result.media_id, result.lease_token)
        return Ended(result.media_id, "deferred", error=error)

    def _place_and_complete(self, conn: Connection, sha256_hex: str, result: Result, similar: dict[int, int]) -> Ended:
        """Move the outputs into place, then mark the media completed. If the files cannot be
        placed (disk full, storage gone), the attempt ends and the job is tried again later."""
        assert result.rendition is not None and result.thumbnail is not None
        names = {}
        try:
            for label, output in (("path", result.rendition), ("thumbnail_path", result.thumbnail)):
                names[label] = self.storage.media_name(sha256_hex, output.suffix)
                self.storage.place(Path(output.path), names[label])
        except OSError as exc:
            return self._defer(conn, result, f"the processed files could not be stored: {exc}")
        media.complete(
            conn,
            result.media_id,
            kind=result.kind,
            mime=result.mime,
            width=result.width,
            height=result.height,
            duration_s=result.duration_s,
            variants=result.variants,
            blurhash=result.blurhash,
            **names,
        )
        hashes.store(conn, result.media_id, result.fingerprints, similar)
        ranks.rank_completed(conn, result.media_id)
        return Ended(result.media_id, "completed")
