"""A media worker process: takes jobs from the queue, claims them in PostgreSQL, processes
them with ImageMagick/FFmpeg into `storage/tmp/`, and hands the result to the finalizer.

No transaction is open while processing; a heartbeat thread keeps the lease alive. The first
SIGTERM lets the current job finish; a second one hands the job back untouched and exits.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from memedroid import jobs, media, metrics, processing
from memedroid.db import Database
from memedroid.errors import ServiceUnavailable
from memedroid.jobs import Job, Output, Result
from memedroid.logs import request_id_var
from memedroid.processing import JobTimeout, Limits, MediaError, process
from memedroid.settings import Settings
from memedroid.storage import Storage

log = logging.getLogger(__name__)

IDLE_POLL = 1.0


class HardStop(BaseException):
    """Raised in the worker's main thread by a second SIGTERM while a job runs."""


@dataclass
class Slot:
    """What this worker is doing, shared with the supervisor (which enforces JOB_TIMEOUT)."""

    array: Any  # multiprocessing.Array('d', 3): media id, monotonic start, tool pgid (0: none)

    def busy(self, media_id: int) -> None:
        self.array[0], self.array[1] = float(media_id), time.monotonic()

    def tool(self, pgid: int) -> None:
        self.array[2] = float(pgid)

    def idle(self) -> None:
        self.array[0], self.array[1], self.array[2] = 0.0, 0.0, 0.0


def run(settings: Settings, ready: Any, job_queue: Any, result_queue: Any, slot: Any, owner: str) -> None:
    """Child-process entry point."""
    Worker(settings, job_queue, result_queue, Slot(slot), owner).run(ready)


class Worker:
    def __init__(self, settings: Settings, job_queue: Any, result_queue: Any, slot: Slot, owner: str) -> None:
        self.settings = settings
        self.job_queue = job_queue
        self.result_queue = result_queue
        self.slot = slot
        self.owner = owner
        self.db = Database(settings.replace(db_pool_size=2))
        self.storage = Storage(settings.storage_dir).ensure()
        self.limits = Limits.from_settings(settings)
        self.stopping = False
        self.busy = False

    def run(self, ready: Any) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        self.job_queue.cancel_join_thread()  # jobs it hands back are durable rows anyway
        processing.tool_started = self.slot.tool
        self.slot.idle()
        ready()
        log.info("worker ready", extra={"event": "worker_ready"})
        while not self.stopping:
            try:
                job = self.job_queue.get(timeout=IDLE_POLL)
            except queue.Empty:
                continue
            try:
                self.handle(job)
            except HardStop:
                break
        self.db.close()
        log.info("worker stopped", extra={"event": "worker_stopped"})

    def _on_term(self, _signum: int, _frame: Any) -> None:
        if self.stopping and self.busy:
            raise HardStop()
        self.stopping = True

    def handle(self, job: Job) -> None:
        lease = str(uuid.uuid4())
        try:
            with self.db.transaction() as conn:
                claim = media.claim(conn, job.media_id, lease, self.owner)
        except ServiceUnavailable:
            log.warning("cannot claim job: database unavailable", extra={"event": "claim_failed", "media_id": job.media_id})
            time.sleep(IDLE_POLL)
            return
        if claim is None:
            return  # done, or another worker has it: duplicates are harmless
        token = request_id_var.set(claim.request_id or job.request_id)
        self.slot.busy(claim.id)
        self.busy = True
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(claim, beating), daemon=True)
        heart.start()
        try:
            result = self._process(claim)
        except HardStop:
            self._hand_back(claim)
            raise
        finally:
            self.busy = False
            beating.set()
            heart.join()
            self.slot.idle()
            request_id_var.reset(token)
        self.result_queue.put(result)

    def _process(self, claim: media.Claim) -> Result:
        started = time.monotonic()
        work = self.storage.work_dir(claim.lease_token)
        raw = self.storage.raw_path(claim.sha256.hex())
        common: dict[str, Any] = {
            "media_id": claim.id,
            "lease_token": claim.lease_token,
            "request_id": claim.request_id,
            "attempt": claim.attempts,
            "source_type": claim.source_type,
        }
        log.info("job started", extra={"event": "job_started", **_fields(common), "source_type": claim.source_type})
        try:
            if not raw.exists():
                raise MediaError("the uploaded file is missing from storage")
            done = process(claim.source_type, raw, work, self.limits, started + self.settings.job_timeout)
            result = Result(
                **common,
                outcome="completed",
                duration_ms=_ms(started),
                kind=done.kind,
                mime=done.mime,
                width=done.width,
                height=done.height,
                duration_s=done.duration_s,
                rendition=Output(str(done.rendition), done.rendition.suffix),
                thumbnail=Output(str(done.thumbnail), ".thumb" + done.thumbnail.suffix),
                variants=done.variants,
                blurhash=done.blurhash,
                work_dir=str(work),
            )
        except MediaError as exc:
            result = Result(**common, outcome="failed", duration_ms=_ms(started), error=str(exc), work_dir=str(work))
        except JobTimeout:
            reason = f"processing timed out after {self.settings.job_timeout} s"
            result = Result(**common, outcome="retry", duration_ms=_ms(started), error=reason, work_dir=str(work))
        except Exception:
            log.exception("job crashed", extra={"event": "job_crashed", **_fields(common)})
            reason = "an internal error interrupted processing"
            result = Result(**common, outcome="retry", duration_ms=_ms(started), error=reason, work_dir=str(work))
        metrics.PROCESSING_SECONDS.labels(claim.source_type, result.outcome).observe(result.duration_ms / 1000)
        level = logging.INFO if result.outcome == "completed" else logging.WARNING
        log.log(
            level,
            "job processed",
            extra={"event": "job_processed", **_fields(common), "outcome": result.outcome, "kind": result.kind,
                   "error": result.error, "duration_ms": result.duration_ms},
        )  # fmt: skip
        return result

    def _heartbeat(self, claim: media.Claim, stop: threading.Event) -> None:
        while not stop.wait(self.settings.heartbeat_seconds):
            try:
                with self.db.transaction() as conn:
                    alive = media.heartbeat(conn, claim.id, claim.lease_token)
            except ServiceUnavailable:
                continue
            if not alive:
                log.warning("lease lost while processing", extra={"event": "lease_lost", "media_id": claim.id})
                return

    def _hand_back(self, claim: media.Claim) -> None:
        self.storage.remove_tree(self.storage.work_dir(claim.lease_token))
        try:
            with self.db.transaction() as conn:
                media.hand_back(conn, claim.id, claim.lease_token)
        except ServiceUnavailable:
            return  # the lease will expire and the janitor will requeue it
        jobs.offer(self.job_queue, [Job(claim.id, claim.request_id)])
        log.info("job handed back", extra={"event": "job_handed_back", "media_id": claim.id})


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _fields(common: dict[str, Any]) -> dict[str, Any]:
    """Log fields from a result's common part (the lease token is not for logs)."""
    return {"media_id": common["media_id"], "attempt": common["attempt"]}
