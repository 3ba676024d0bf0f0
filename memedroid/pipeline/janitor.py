"""The janitor: recovery and housekeeping, run by the supervisor on a `threading.Timer`
(and once at start-up, before workers take jobs). Only one janitor acts at a time across
hosts, under a PostgreSQL advisory lock.

Each tick: expired leases go back to pending (or to failed when attempts are used up),
pending jobs nobody queued recently are offered again, and orphan files are deleted: tmp
folders of leases that ended at once, raw uploads with no unfinished job and final files no
row keeps once older than a grace period.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter

from memedroid import metrics
from memedroid.cache import Cache
from memedroid.db import Database
from memedroid.errors import ClockSkewed, ServiceUnavailable
from memedroid.messages import Job
from memedroid.repositories import health, likes, media, ranks, sessions
from memedroid.repositories.counters import Counters
from memedroid.repositories.media import Ended
from memedroid.services import quarantine
from memedroid.services.health import check_clock
from memedroid.services.jobs import JobQueue
from memedroid.services.moderation import Moderation
from memedroid.settings import Settings
from memedroid.storage import Storage
from memedroid.transport import JobChannel

log = logging.getLogger(__name__)

LOCK_KEY = 0x6A616E69  # "jani"
FAILED_RETENTION_SECONDS = 7 * 24 * 3600  # raw files of failed jobs, for `memedroid reprocess`
RERANK_BATCH = 1000  # posts ranked per transaction: row locks held for milliseconds
RAW_BATCH = 500  # raw files the orphan sweep locks per transaction (each lock takes a slot of the lock table)
_HASH_NAME = re.compile(r"([0-9a-f]{64})")


def lease_owner(node: str, boot_id: str) -> str:
    """Who holds leases taken by this supervisor's workers: `<node>/<boot id>` (NODE_NAME)."""
    return f"{node}/{boot_id}"


class Janitor:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        storage: Storage,
        jobs: JobChannel | None,
        owner: str,
        reclaim_node: bool = True,
    ) -> None:
        """`owner` is this supervisor's lease owner, `jobs` its job channel (None for an
        operator's one-off run: no workers to feed). With `reclaim_node`, leases held by an
        earlier boot of this node are known dead and reclaimed at once (the supervisor's
        janitor); another node's only once expired, however many nodes share a host; without
        it (an operator's one-off run), only expired leases are."""
        self.settings = settings
        self.cache = Cache.from_settings(settings)
        self.counters = Counters(self.cache)
        self.moderation = Moderation.build(db, settings)
        self.db = db
        self.storage = storage
        self.jobs = JobQueue(db, jobs)
        self.owner = owner
        self.reclaim_node = reclaim_node
        self.node_prefix = owner.split("/", 1)[0] + "/"
        self._timer: threading.Timer | None = None
        self._stopped = threading.Event()

    # --- scheduling ------------------------------------------------------------------------

    def start(self) -> None:
        """Tick every JANITOR_INTERVAL seconds on a timer thread until `stop()`."""
        if self._stopped.is_set():
            return
        self._timer = threading.Timer(self.settings.janitor_interval, self._scheduled)
        self._timer.daemon = True
        self._timer.name = "janitor"
        self._timer.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()

    def _scheduled(self) -> None:
        try:
            self.tick()
        except ClockSkewed as exc:
            log.error("janitor refused to act: clock skewed", extra={"event": "clock_skewed", "error": exc.detail})
        except Exception:
            log.exception("janitor tick failed", extra={"event": "janitor_error"})
        self.start()

    # --- the work --------------------------------------------------------------------------

    def tick(self, dry_run: bool = False, recover: bool = True) -> Counter[str]:
        """One round of recovery and housekeeping; returns what was done, by action.
        `dry_run` changes nothing (orphans are only listed); `recover=False` only looks
        for orphan files. Raises `ClockSkewed`, doing nothing, when this node's clock is far off
        the database's."""
        actions: Counter[str] = Counter()
        try:
            check_clock(self.db, self.settings)
            with self.db.session() as lock_conn:
                if not health.try_lock(lock_conn, LOCK_KEY):
                    return actions  # another janitor is at work
                try:
                    if recover and not dry_run:
                        self._expire_leases(actions)
                        self._enqueue_pending(actions)
                        self._flush_views(actions)
                        self._rerank_hot(actions)
                        with self.db.transaction() as conn:
                            actions["sessions_deleted"] += sessions.delete_expired(conn)
                        actions["bans_lifted"] += self.moderation.lift_ended_bans()
                        actions["media_settled"] += quarantine.settle(self.db, self.storage)
                    try:
                        self._remove_orphans(actions, dry_run)
                    except OSError as exc:  # the disk or the object store: the next round tries again
                        log.warning(
                            "orphan sweep skipped: storage unavailable", extra={"event": "orphans_skipped", "error": str(exc)}
                        )
                finally:
                    health.unlock(lock_conn, LOCK_KEY)
        except ClockSkewed:
            raise
        except ServiceUnavailable:
            log.warning("janitor skipped: database unavailable", extra={"event": "janitor_skipped"})
        if actions:
            log.info("janitor tick", extra={"event": "janitor_tick", "dry_run": dry_run, **actions})
        if not dry_run:
            for action, count in actions.items():
                metrics.JANITOR_ACTIONS.labels(action).inc(count)
        return actions

    def _expire_leases(self, actions: Counter[str]) -> None:
        s = self.settings
        with self.db.transaction() as conn:
            ended = media.expire_leases(
                conn, s.lease_seconds, self.reclaim_node, self.node_prefix, self.owner, s.max_attempts, s.stuck_after
            )
        for row in ended:
            action = "lease_expired_requeued" if row.status == "pending" else "lease_expired_failed"
            actions[action] += 1
            log.warning(
                "lease expired",
                extra={"event": action, "media_id": row.id, "attempt": row.attempts, "request_id": row.request_id,
                       "error": row.error},
            )  # fmt: skip

    def _enqueue_pending(self, actions: Counter[str]) -> None:
        if self.jobs.channel is None:
            return  # a one-off run has no workers to feed: the supervisor's sweep will
        with self.db.transaction() as conn:
            batch = media.to_enqueue(conn, self.settings.janitor_interval, self.settings.job_queue_size)
        offered = self.jobs.offer(batch)
        for job in batch:
            if job.media_id in offered:
                log.info(
                    "job enqueued by sweep",
                    extra={"event": "job_requeued", "media_id": job.media_id, "request_id": job.request_id},
                )
        actions["jobs_enqueued"] += len(offered)

    def _flush_views(self, actions: Counter[str]) -> None:
        """Move the views counted in Redis into PostgreSQL, in one statement."""
        pending = self.counters.take_pending_views()
        if not pending:
            return
        with self.db.transaction() as conn:
            likes.add_views(conn, pending)
        self.counters.flushed()
        actions["views_flushed"] += sum(pending.values())

    def _rerank_hot(self, actions: Counter[str]) -> None:
        """When HOT_RANK_INTERVAL has passed: the next generation of hot ranks, written in
        batches into the slot of the generation before the current one (walks still in the
        current one keep their order), then made current."""
        started = time.monotonic()
        with self.db.transaction() as conn:
            rerank = ranks.start(conn, self.settings.hot_rank_interval)
        if rerank is None:
            return
        after: tuple[float, int] | None = (float("inf"), 2**63 - 1)
        while after is not None:
            with self.db.transaction() as conn:
                ranked, after = ranks.rank_batch(conn, rerank, after, RERANK_BATCH)
            actions["hot_ranked"] += ranked
        with self.db.transaction() as conn:
            actions["hot_fallen"] += ranks.zero_fallen(conn, rerank)
            ranks.finish(conn, rerank)
        self.cache.bump_feed_version()
        log.info(
            "hot ranks recomputed",
            extra={"event": "hot_reranked", "generation": rerank.generation + 1, "ranked": actions["hot_ranked"],
                   "fallen": actions["hot_fallen"], "duration_ms": round((time.monotonic() - started) * 1000, 1)},
        )  # fmt: skip

    def _remove_orphans(self, actions: Counter[str], dry_run: bool) -> None:
        grace = self.settings.orphan_grace_seconds
        storage = self.storage
        # Listed before the leases are read: a folder whose lease is not live afterwards was
        # made under a lease that has ended (a claim commits before its folder is made).
        work_dirs = storage.work_dirs()
        with self.db.transaction() as conn:
            live_leases = media.live_leases(conn)
            kept = media.kept_hashes(conn)
        self._remove_orphan_raw(list(storage.old_files("raw", grace)), actions, dry_run)
        for folder in work_dirs:
            if folder.name not in live_leases:
                self._note(str(folder), "orphan_tmp_deleted", actions, dry_run)
                if not dry_run:
                    storage.remove_tree(folder)
        for area in ("media", "quarantine"):
            final_files = []
            for name in storage.old_files(area, grace):
                match = _HASH_NAME.match(name.rsplit("/", 1)[-1])
                if match is None or match[1] not in kept:
                    final_files.append(name)
            self._delete(area, final_files, f"orphan_{area}_deleted", actions, dry_run)

    def _remove_orphan_raw(self, names: list[str], actions: Counter[str], dry_run: bool) -> None:
        """Raw uploads no row needs. A raw file named by its hash may be one whose upload has
        not committed its row yet, however old the file: it is deleted only under its lock,
        which such an upload holds until it commits, and only if the rows, read once the lock
        is held, do not need it. Anything else (an abandoned partial upload) goes by age."""
        hashed = [name for name in names if _HASH_NAME.fullmatch(name)]
        self._delete("raw", [name for name in names if not _HASH_NAME.fullmatch(name)], "orphan_raw_deleted", actions, dry_run)
        for start in range(0, len(hashed), RAW_BATCH):
            with self.db.transaction() as conn:  # the locks are held until the files are gone
                held = media.hold_orphan_raw_files(conn, hashed[start : start + RAW_BATCH])
                live = media.live_raw_hashes(conn, held, FAILED_RETENTION_SECONDS)
                self._delete("raw", [name for name in held if name not in live], "orphan_raw_deleted", actions, dry_run)

    def _delete(self, area: str, names: list[str], action: str, actions: Counter[str], dry_run: bool) -> None:
        for name in names:
            self._note(f"{area}/{name}", action, actions, dry_run)
        if names and not dry_run:
            self.storage.delete(area, names)

    def _note(self, path: str, action: str, actions: Counter[str], dry_run: bool) -> None:
        actions[action] += 1
        log.info("orphan file" if dry_run else "orphan file deleted", extra={"event": action, "path": path, "dry_run": dry_run})

    def release(self, media_id: int, lease_token: str, reason: str) -> None:
        """End the attempt of a worker that died or was killed under `lease_token`; requeue the
        job if it may retry."""
        try:
            with self.db.transaction() as conn:
                ended = media.release(conn, media_id, lease_token, reason, self.settings.max_attempts)
        except ServiceUnavailable:
            return  # its lease will expire
        if ended is not None:  # else the claim never committed, or the job ended meanwhile
            self._requeue("job released", "job_released", ended, reason)

    def hand_back(self, media_id: int, lease_token: str) -> None:
        """Return a job whose result was lost with the finalizer: the attempt does not count."""
        try:
            with self.db.transaction() as conn:
                ended = media.hand_back(conn, media_id, lease_token)
        except ServiceUnavailable:
            return  # its lease will expire
        if ended is not None:  # else it was finalized before the finalizer died
            self._requeue("job handed back", "job_handed_back", ended, None)

    def _requeue(self, message: str, event: str, ended: Ended, reason: str | None) -> None:
        log.warning(
            message,
            extra={"event": event, "media_id": ended.id, "status": ended.status, "attempt": ended.attempts,
                   "request_id": ended.request_id, "error": reason},
        )  # fmt: skip
        if ended.status == "pending":
            self.jobs.offer([Job(ended.id, ended.request_id)])
