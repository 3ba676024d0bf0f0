"""The supervisor: prepares the database, then starts and watches MemeDroid's processes.

Built like gunicorn's arbiter: signal handlers only queue the signal and wake the main loop,
which reaps children, respawns the ones that died, kills a worker whose job ran past
JOB_TIMEOUT, halts when a child fails at boot instead of respawning it forever, and stops in
order on SIGTERM/SIGINT. Every child is spawned (never forked from this threaded process) in
its own process group. The janitor runs here, on a timer thread.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from typing import Any

from memedroid import finalizer, http, logs, migrations, worker
from memedroid.db import Database
from memedroid.embedded import EmbeddedPostgres, EmbeddedRedis
from memedroid.janitor import Janitor, lease_owner
from memedroid.settings import Settings
from memedroid.storage import Storage

log = logging.getLogger(__name__)

EXIT_BOOT_FAILURE = 3
# A child exiting with one of these failed to boot even if it had said it was ready
# (gunicorn's master exits 3 when a worker cannot boot, 4 when the app cannot load).
BOOT_FAILURE_CODES = {3, 4}
KILL_GRACE = 10.0  # beyond JOB_TIMEOUT (at most half of it): the worker's own deadline fires first
HARD_STOP_SECONDS = 3.0
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Role:
    """A kind of child process. `target(settings, ready, *args)` runs in a spawned process
    and calls `ready()` once booted (a child that dies before that failed at boot). Children
    stop in `phase` order; `slot` (workers) shares the current job with the supervisor."""

    name: str
    target: Callable[..., None]
    args: tuple[Any, ...] = ()
    phase: int = 0
    slot: Any = None


@dataclass
class Child:
    role: Role
    process: SpawnProcess
    booted: Event
    killed_for_timeout: bool = False


def _child_main(role: Role, settings: Settings, booted: Event) -> None:
    """Entry point of every child: own process group, default signals, a title, then the role."""
    os.setpgid(0, 0)  # the terminal's Ctrl-C reaches the supervisor only; it stops us in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    import setproctitle

    setproctitle.setproctitle(f"memedroid: {role.name}")
    logs.configure(settings.log_level, role=role.name)
    role.target(settings, booted.set, *role.args)


def _die_with_parent() -> None:
    """Ask Linux to send us SIGTERM if the supervisor dies (kill -9 included)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: children notice on their own
        pass


class Supervisor:
    """Runs the roles and keeps them running until told to stop."""

    def __init__(self, settings: Settings, roles: list[Role], janitor: Janitor | None = None) -> None:
        self.settings = settings
        self.roles = roles
        self.janitor = janitor
        self.context = multiprocessing.get_context("spawn")
        self.children: dict[int, Child] = {}
        self.signals: list[int] = []
        self.stopping = False
        self.interrupted = False
        self.exit_code = 0

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        """Start every role and supervise until stopped; return the process exit code."""
        self._install_signals()
        for role in self.roles:
            self._spawn(role)
        if self.janitor is not None:
            self.janitor.start()
        log.info("supervisor started", extra={"event": "supervisor_started", "children": len(self.children)})
        while self.children:
            self._handle_signals()
            self._reap()
            self._kill_overdue_jobs()
            if not self.children:
                break
            self._wait(1.0)
        if self.janitor is not None:
            self.janitor.stop()
        log.info("supervisor stopped", extra={"event": "supervisor_stopped", "exit_code": self.exit_code})
        return self.exit_code

    def _wait(self, timeout: float) -> None:
        sentinels = [child.process.sentinel for child in self.children.values()]
        wait([*sentinels, self._wakeup_r], timeout=timeout)
        self._drain_wakeup()

    def _spawn(self, role: Role) -> None:
        if role.slot is not None:
            role.slot[:] = [0.0, 0.0, 0.0]
        booted = self.context.Event()
        process = self.context.Process(target=_child_main, args=(role, self.settings, booted), name=role.name)
        process.start()
        assert process.pid is not None
        self.children[process.pid] = Child(role, process, booted)
        log.info("child started", extra={"event": "child_started", "child": role.name, "pid": process.pid})

    def _reap(self) -> None:
        halt = False
        for pid, child in list(self.children.items()):
            code = child.process.exitcode
            if code is None:
                continue
            del self.children[pid]
            how = {"exit_code": code} if code >= 0 else {"signal": signal.Signals(-code).name}
            self._release_job(child)
            if self.stopping:
                log.info("child stopped", extra={"event": "child_stopped", "child": child.role.name, "pid": pid, **how})
            elif not child.booted.is_set() or code in BOOT_FAILURE_CODES:
                log.critical(
                    "child failed at boot; halting",
                    extra={"event": "child_boot_failed", "child": child.role.name, "pid": pid, **how},
                )
                self.exit_code = EXIT_BOOT_FAILURE
                halt = True
            else:
                log.error("child died; restarting", extra={"event": "child_died", "child": child.role.name, "pid": pid, **how})
                self._spawn(child.role)
        if halt:
            self.stop(graceful=False)

    def _release_job(self, child: Child) -> None:
        """A worker that died holding a job: end that attempt now rather than at lease expiry."""
        slot = child.role.slot
        if slot is None:
            return
        if slot[2]:  # the tool it was running (FFmpeg) lives in its own group: end it too
            _signal(int(slot[2]), signal.SIGKILL, group=True)
        media_id = int(slot[0])
        slot[:] = [0.0, 0.0, 0.0]
        if not media_id or self.janitor is None:
            return
        if child.killed_for_timeout:
            reason = f"processing timed out after {self.settings.job_timeout} s"
        else:
            reason = "the worker processing this file stopped unexpectedly"
        self.janitor.release(media_id, reason)

    def _kill_overdue_jobs(self) -> None:
        """A job past JOB_TIMEOUT (say, ImageMagick stuck in-process): kill its whole worker."""
        now = time.monotonic()
        limit = self.settings.job_timeout + min(KILL_GRACE, self.settings.job_timeout / 2)
        for pid, child in self.children.items():
            slot = child.role.slot
            if slot is None or not slot[1] or child.killed_for_timeout:
                continue
            if now - slot[1] > limit:
                log.error(
                    "job timed out; killing its worker",
                    extra={"event": "worker_killed_timeout", "child": child.role.name, "pid": pid, "media_id": int(slot[0])},
                )
                child.killed_for_timeout = True
                _signal(pid, signal.SIGKILL, group=True)

    def stop(self, graceful: bool = True) -> None:
        """Stop the children phase by phase (HTTP and workers, then the finalizer), each with
        SIGTERM; workers still busy get a second SIGTERM (hand back the job) before the
        deadline, and whatever remains is killed. Not graceful: hand back, then kill all."""
        if self.stopping and graceful:
            return
        self.stopping = True
        if self.janitor is not None:
            self.janitor.stop()
        if not graceful:
            self._terminate(list(self.children), time.monotonic() + HARD_STOP_SECONDS)
            return
        deadline = time.monotonic() + self.settings.graceful_timeout
        phases = sorted({child.role.phase for child in self.children.values()})
        for index, phase in enumerate(phases):
            pids = [pid for pid, child in self.children.items() if child.role.phase == phase]
            last = index == len(phases) - 1
            share = deadline if last else time.monotonic() + (deadline - time.monotonic()) * 0.7
            for pid in pids:
                _signal(pid, signal.SIGTERM)
            if not self._wait_for(pids, time.monotonic() + (share - time.monotonic()) * 0.6):
                if self.interrupted:  # a second signal: stop everything hard
                    self._terminate(list(self.children), time.monotonic() + HARD_STOP_SECONDS)
                    return
                self._terminate(pids, share)  # a second TERM: hand back, then kill

    def _terminate(self, pids: list[int], until: float) -> None:
        for pid in pids:
            if pid in self.children:
                _signal(pid, signal.SIGTERM)
        if not self._wait_for(pids, until):
            for pid in pids:
                if pid in self.children:
                    _signal(pid, signal.SIGKILL, group=True)
            self._wait_for(pids, time.monotonic() + 5)

    def _wait_for(self, pids: list[int], until: float) -> bool:
        """Reap until every pid has exited (True) or `until` passes (False). A signal that
        arrives meanwhile means "stop hard": it cuts the wait short."""
        while any(pid in self.children for pid in pids):
            if self.signals:
                self.signals.clear()
                self.interrupted = True
                return False
            if time.monotonic() >= until:
                return False
            self._wait(min(0.2, max(0.0, until - time.monotonic())))
            self._reap()
        return True

    # --- signals ---------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        signal.set_wakeup_fd(self._wakeup_w)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._queue_signal)

    def _queue_signal(self, signum: int, _frame: Any) -> None:
        self.signals.append(signum)  # only queue: the main loop does the work

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self._wakeup_r, 512):
                pass
        except BlockingIOError:
            pass

    def _handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            log.info("signal received", extra={"event": "signal", "signal": signal.Signals(signum).name})
            self.stop(graceful=signum != signal.SIGQUIT)


def _signal(pid: int, sig: int, group: bool = False) -> None:
    """Send `sig` to a child, or to its whole process group; a child already gone is fine."""
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def prepare(settings: Settings, services: ExitStack | None = None) -> Settings:
    """Start an embedded PostgreSQL when no `DATABASE_URL` is given (and, with `services`, a
    local Redis when no `REDIS_URL` is), then migrate. `services` stops them on exit."""
    stack = services or ExitStack()
    if not settings.database_url:
        postgres = EmbeddedPostgres(settings.var_dir / "pgdata")
        settings = settings.replace(database_url=postgres.start())
        stack.callback(postgres.stop)
    if services is not None and not settings.redis_url:
        redis = EmbeddedRedis(settings.var_dir)
        settings = settings.replace(redis_url=redis.start())
        stack.callback(redis.stop)
    migrations.migrate(settings.database_url)
    if services is None:
        stack.close()
    return settings


def roles(settings: Settings, context: Any, job_queue: Any, result_queue: Any, owner: str) -> list[Role]:
    """The processes MemeDroid runs: HTTP, the media workers, the finalizer."""
    pipeline = [
        Role(f"worker {n}", worker.run, (job_queue, result_queue, slot, owner), slot=slot)
        for n, slot in ((n, context.Array("d", 3)) for n in range(1, settings.workers + 1))
    ]
    return [
        Role("http", http.serve, (job_queue,)),
        *pipeline,
        Role("finalizer", finalizer.run, (result_queue, job_queue), phase=1),
    ]


def serve(settings: Settings) -> int:
    """Recover, then run every role under one supervisor until stopped."""
    context = multiprocessing.get_context("spawn")
    job_queue = context.Queue(maxsize=settings.job_queue_size)
    job_queue.cancel_join_thread()  # what it holds is durable in the database
    result_queue = context.Queue()
    owner = lease_owner(uuid.uuid4().hex[:12])
    db = Database(settings)
    janitor = Janitor(settings, db, Storage(settings.storage_dir).ensure(), job_queue, owner)
    janitor.tick()  # start-up recovery, before any worker takes a job
    try:
        return Supervisor(settings, roles(settings, context, job_queue, result_queue, owner), janitor).run()
    finally:
        db.close()


def main(settings: Settings) -> int:
    """`bin/memedroid-supervisor` and `memedroid supervisor` (which load the settings)."""
    settings.warn_if_generated_secret()
    with ExitStack() as services:
        settings = prepare(settings, services)
        print(f"MemeDroid is serving http://{settings.http_bind}/ (Ctrl-C stops it)", file=sys.stderr, flush=True)
        return serve(settings)
