"""A media worker process: takes jobs from the job channel, claims them in PostgreSQL,
processes them with ImageMagick/FFmpeg into `storage/tmp/`, and hands the result to the
finalizer.

No transaction is open while processing; a heartbeat thread keeps the lease alive. The kernel
caps the worker's memory (and so each FFmpeg it starts) at WORKER_MEMORY_BYTES: a file that
needs more fails with a reason, and the worker then starts afresh. The first SIGTERM lets the
current job finish; a second one hands the job back untouched and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import threading
import time
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

from memedroid import metrics
from memedroid.errors import ServiceUnavailable
from memedroid.logs import request_id_var
from memedroid.messages import Fingerprint, Job, Output, Result
from memedroid.pipeline.process import PipelineProcess
from memedroid.pipeline.processing import TOO_MUCH_MEMORY, Budget, Interrupted, JobTimeout, Limits, MediaError, process
from memedroid.repositories import hashes, media
from memedroid.settings import Settings
from memedroid.transport import Pipeline, Slot

log = logging.getLogger(__name__)

IDLE_POLL = 1.0
NICENESS = 10  # added to the worker's (and its tools') scheduling niceness


class HardStop(BaseException):
    """Raised in the worker's main thread by a second SIGTERM while a job runs."""


def run(settings: Settings, ready: Callable[[], None], pipeline: Pipeline, slot: Slot, owner: str) -> None:
    """Child-process entry point."""
    Worker(settings, pipeline, slot, owner).run(ready)


class Worker(PipelineProcess):
    def __init__(self, settings: Settings, pipeline: Pipeline, slot: Slot, owner: str) -> None:
        super().__init__(settings, pipeline, slot)
        self.owner = owner
        self.limits = Limits.from_settings(settings)
        self.busy = False

    def run(self, ready: Callable[[], None]) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        ceiling = self.settings.worker_memory_bytes
        resource.setrlimit(resource.RLIMIT_DATA, (ceiling, ceiling))  # inherited by every FFmpeg it runs
        os.nice(NICENESS)  # background work: requests, which people wait on, get the CPU first
        ready()
        log.info("worker ready", extra={"event": "worker_ready"})
        while not self.stopping:
            self.slot.alive()
            job = self.pipeline.jobs.take(timeout=IDLE_POLL)
            if job is None:
                continue
            self.slot.alive(took=True)
            try:
                self.handle(job)
            except HardStop:
                break
        self.db.close()
        log.info("worker stopped", extra={"event": "worker_stopped"})

    def _on_term(self, _signum: int, _frame: FrameType | None) -> None:
        if self.stopping and self.busy:
            raise HardStop()
        self.stopping = True

    def handle(self, job: Job) -> None:
        lease = str(uuid.uuid4())
        self.slot.busy(job.media_id, lease)  # before the claim: if this process dies, the supervisor ends the lease
        try:
            claim = self._claim(job, lease)
            if claim is not None:
                self._work(claim, job)
        finally:
            self.slot.idle()

    def _claim(self, job: Job, lease: str) -> media.Claim | None:
        """The job under `lease`, or None: done, another worker has it (duplicates are
        harmless), or the database is away (the sweep offers the job again)."""
        try:
            with self.db.transaction() as conn:
                return media.claim(conn, job.media_id, lease, self.owner)
        except ServiceUnavailable:
            log.warning("cannot claim job: database unavailable", extra={"event": "claim_failed", "media_id": job.media_id})
            time.sleep(IDLE_POLL)
            return None

    def _work(self, claim: media.Claim, job: Job) -> None:
        """Process a claimed job and hand the result to the finalizer, keeping the lease alive
        until the finalizer has it. A job whose lease is lost (the janitor gave it to another
        worker) stops at once: its tool is killed and what it made is dropped."""
        token = request_id_var.set(claim.request_id or job.request_id)
        self.busy = True
        beating, lost = threading.Event(), threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(claim, beating, lost), daemon=True)
        heart.start()
        try:
            result = self._process(claim, lost)
            self.busy = False
            while not lost.is_set() and not self.pipeline.results.put(result, timeout=IDLE_POLL):
                self.slot.alive()  # the finalizer is behind: wait, it is the only way forward
            if lost.is_set():
                self.storage.remove_tree(self.storage.work_dir(claim.lease_token))
                log.warning("job dropped: its lease is lost", extra={"event": "job_abandoned", "media_id": claim.id})
        except HardStop:
            self._hand_back(claim)
            raise
        finally:
            self.busy = False
            beating.set()
            heart.join()
            request_id_var.reset(token)

    def _process(self, claim: media.Claim, lost: threading.Event) -> Result:
        started = time.monotonic()
        work = self.storage.work_dir(claim.lease_token)
        common: dict[str, Any] = {
            "media_id": claim.id,
            "lease_token": claim.lease_token,
            "request_id": claim.request_id,
            "attempt": claim.attempts,
            "source_type": claim.source_type,
        }

        def ended(outcome: str, error: str) -> Result:
            return Result(**common, outcome=outcome, duration_ms=_ms(started), error=error, work_dir=str(work))

        log.info("job started", extra={"event": "job_started", **_fields(common), "source_type": claim.source_type})
        try:
            try:
                raw = self.storage.fetch_raw(claim.sha256.hex(), work)
            except FileNotFoundError:  # one request, not a look and then a read
                raise Interrupted("the uploaded file is missing from storage") from None
            budget = Budget(self.limits, started + self.settings.job_timeout, self.slot.tool_started, lost)
            done = process(claim.source_type, raw, work, budget)
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
                fingerprints=done.fingerprints,
                similar=self._similar(claim.id, done.fingerprints),
                work_dir=str(work),
            )
        except MediaError as exc:
            if self.storage.scratch_free_bytes() < self.settings.disk_reserve_bytes:  # a tool short of room may say anything
                log.warning("disk full while processing", extra={"event": "disk_full", **_fields(common), "error": str(exc)})
                result = ended("later", f"the disk is full: {exc}")
            else:
                result = ended("failed", str(exc))
        except JobTimeout:
            result = ended("retry", f"processing timed out after {self.settings.job_timeout} s")
        except Interrupted as exc:
            result = ended("retry", str(exc))
        except OSError as exc:  # the object store (or the disk) failed us: not the file's fault
            log.warning("storage unavailable", extra={"event": "storage_error", **_fields(common), "error": str(exc)})
            result = ended("later", f"the storage failed: {exc}")
        except MemoryError:  # the kernel's ceiling: a verdict on the file
            self.stopping = True  # and this process starts afresh, its heap in pieces
            result = ended("failed", TOO_MUCH_MEMORY)
        except Exception:
            log.exception("job crashed", extra={"event": "job_crashed", **_fields(common)})
            result = ended("retry", "an internal error interrupted processing")
        metrics.PROCESSING_SECONDS.labels(claim.source_type, result.outcome).observe(result.duration_ms / 1000)
        level = logging.INFO if result.outcome == "completed" else logging.WARNING
        log.log(
            level,
            "job processed",
            extra={"event": "job_processed", **_fields(common), "outcome": result.outcome, "kind": result.kind,
                   "error": result.error, "duration_ms": result.duration_ms},
        )  # fmt: skip
        return result

    def _similar(self, media_id: int, fingerprints: list[Fingerprint]) -> dict[int, int] | None:
        """The near-duplicates of a processed media: searched here, by the workers in parallel,
        rather than by the finalizer; None when the database is away (the finalizer searches
        then, and the processing is not wasted)."""
        try:
            with self.db.transaction() as conn:
                return hashes.near(conn, fingerprints, exclude=media_id)
        except ServiceUnavailable:
            return None

    def _heartbeat(self, claim: media.Claim, stop: threading.Event, lost: threading.Event) -> None:
        """Renew the lease until `stop`. When it is lost (taken back by the janitor, or not
        renewed for LEASE_SECONDS, after which the janitor may take it: a lock held on the row,
        the database away), set `lost` and kill the tool the job runs."""
        renewed = time.monotonic()
        while not stop.wait(self.settings.heartbeat_seconds):
            try:
                with self.db.transaction() as conn:
                    alive = media.heartbeat(conn, claim.id, claim.lease_token)
            except ServiceUnavailable:
                if time.monotonic() - renewed < self.settings.lease_seconds:
                    continue
                alive = False
            if alive:
                renewed = time.monotonic()
                continue
            log.warning("lease lost while processing; stopping", extra={"event": "lease_lost", "media_id": claim.id})
            lost.set()
            if tool := self.slot.tool:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(tool, signal.SIGKILL)
            return

    def _hand_back(self, claim: media.Claim) -> None:
        self.storage.remove_tree(self.storage.work_dir(claim.lease_token))
        try:
            with self.db.transaction() as conn:
                media.hand_back(conn, claim.id, claim.lease_token)
        except ServiceUnavailable:
            return  # the lease will expire and the janitor will requeue it
        self.jobs.offer([Job(claim.id, claim.request_id)])
        log.info("job handed back", extra={"event": "job_handed_back", "media_id": claim.id})


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _fields(common: dict[str, Any]) -> dict[str, Any]:
    """Log fields from a result's common part (the lease token is not for logs)."""
    return {"media_id": common["media_id"], "attempt": common["attempt"]}
