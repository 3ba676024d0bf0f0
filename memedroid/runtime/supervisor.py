"""The supervisor: prepares the database, then starts and watches MemeDroid's processes.

Built like gunicorn's arbiter: signal handlers only queue the signal and wake the main loop,
which reaps children, respawns the ones that died, kills a worker whose job ran past
JOB_TIMEOUT and a finalizer that stopped heart-beating, judges whether the pipeline makes
progress (for `/readyz`), halts when a child fails at boot instead of respawning it forever,
and stops in order on SIGTERM/SIGINT. Every child is spawned (never forked from this threaded
process) in its own process group. The janitor runs here, on a timer thread.
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
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext, SpawnProcess
from types import FrameType
from typing import Any

from memedroid import logs
from memedroid.api import server
from memedroid.db import Database
from memedroid.pipeline import finalizer, worker
from memedroid.pipeline.janitor import Janitor, lease_owner
from memedroid.runtime.bootstrap import Embedded, prepare
from memedroid.services.health import check_clock
from memedroid.services.jobs import JobListener, JobQueue
from memedroid.settings import Settings
from memedroid.storage import open_storage
from memedroid.transport import Flag, Pipeline, Slot, Stall

log = logging.getLogger(__name__)

EXIT_BOOT_FAILURE = 3
# A child exiting with one of these failed to boot even if it had said it was ready
# (gunicorn's master exits 3 when a worker cannot boot, 4 when the app cannot load).
BOOT_FAILURE_CODES = {3, 4}
# A child killed by a signal before it booted was killed from outside (an operator, the OOM
# killer) and is started again, unless it keeps dying that way: then it cannot boot.
MAX_KILLED_AT_BOOT = 5
KILL_GRACE = 10.0  # beyond JOB_TIMEOUT (at most half of it): the worker's own deadline fires first
HARD_STOP_SECONDS = 3.0
EMBEDDED_RETRY_SECONDS = 5.0  # between attempts to start again an embedded server that died
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Role:
    """A child process. `target(settings, ready, *args)` runs in a spawned process and calls
    `ready()` once booted (a child that dies before that failed at boot). Children stop in
    `phase` order. `slot` (pipeline children) shares what the child is doing; when a worker
    dies holding a job, that attempt counts (the input may have crashed it), when the
    finalizer does, the job is handed back untouched (the work itself had succeeded)."""

    name: str
    kind: str  # http, worker or finalizer
    target: Callable[..., None]
    args: tuple[Any, ...] = ()
    phase: int = 0
    slot: Slot | None = None


@dataclass
class Child:
    role: Role
    process: SpawnProcess
    booted: Flag  # raised by the child once booted (no lock a dying child could hold)
    killed: bool = False  # by the supervisor (a worker: its job timed out; the finalizer: it stalled)


def _child_main(role: Role, settings: Settings, booted: Flag) -> None:
    """Entry point of every child: own process group, default signals, a title, then the role."""
    os.setpgid(0, 0)  # the terminal's Ctrl-C reaches the supervisor only; it stops us in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    import setproctitle

    setproctitle.setproctitle(f"memedroid: {role.name}")
    logs.configure(settings.log_level, role=role.name)
    role.target(settings, booted.raise_, *role.args)


def _die_with_parent() -> None:
    """Ask Linux to send us SIGTERM if the supervisor dies (kill -9 included)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: children notice on their own
        pass


class Supervisor:
    """Runs the roles and keeps them running until told to stop."""

    def __init__(
        self,
        settings: Settings,
        roles: list[Role],
        janitor: Janitor | None = None,
        pipeline: Pipeline | None = None,
        listener: JobListener | None = None,
        embedded: list[Embedded] | None = None,
    ) -> None:
        self.settings = settings
        self.roles = roles
        self.janitor = janitor
        self.pipeline = pipeline
        self.listener = listener
        self.embedded = embedded or []
        self.embedded_retry: dict[str, float] = {}  # a dead embedded server's name: when to try it again
        self.context = multiprocessing.get_context("spawn")
        self.children: dict[int, Child] = {}
        self.signals: list[int] = []
        self.stopping = False
        self.interrupted = False
        self.exit_code = 0
        self.stall_watch = StallWatch(settings.pipeline_stall_seconds)
        self.killed_at_boot: Counter[str] = Counter()  # children of a role killed before booting, in a row

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        """Start every role and supervise until stopped; return the process exit code."""
        self._install_signals()
        for role in self.roles:
            self._spawn(role)
        if self.janitor is not None:
            self.janitor.start()
        if self.listener is not None:
            self.listener.start()
        log.info("supervisor started", extra={"event": "supervisor_started", "children": len(self.children)})
        while self.children:
            self._handle_signals()
            self._reap()
            self._kill_overdue_jobs()
            self._watch_pipeline()
            self._watch_embedded()
            if not self.children:
                break
            self._wait(1.0)
        if self.janitor is not None:
            self.janitor.stop()
        if self.listener is not None:
            self.listener.stop()
        log.info("supervisor stopped", extra={"event": "supervisor_stopped", "exit_code": self.exit_code})
        return self.exit_code

    def _wait(self, timeout: float) -> None:
        sentinels = [child.process.sentinel for child in self.children.values()]
        wait([*sentinels, self._wakeup_r], timeout=timeout)
        self._drain_wakeup()

    def _spawn(self, role: Role) -> None:
        if role.slot is not None:
            role.slot.reset()
        booted = Flag(self.context)
        process = self.context.Process(target=_child_main, args=(role, self.settings, booted), name=role.name)
        process.start()
        assert process.pid is not None
        self.children[process.pid] = Child(role, process, booted)
        log.info("child started", extra={"event": "child_started", "child": role.name, "pid": process.pid})

    def _reap(self) -> None:
        halt = False
        for pid, child in list(self.children.items()):
            code, booted = child.process.exitcode, bool(child.booted)
            if booted:
                self.killed_at_boot.pop(child.role.name, None)
            if code is None:
                continue
            del self.children[pid]
            how = {"exit_code": code} if code >= 0 else {"signal": signal.Signals(-code).name}
            self._release_job(child)
            if not booted and code < 0:
                self.killed_at_boot[child.role.name] += 1
            if self.stopping:
                log.info("child stopped", extra={"event": "child_stopped", "child": child.role.name, "pid": pid, **how})
            elif code in BOOT_FAILURE_CODES or (not booted and self._cannot_boot(child.role.name, code)):
                log.critical(
                    "child failed at boot; halting",
                    extra={"event": "child_boot_failed", "child": child.role.name, "pid": pid, **how},
                )
                self.exit_code = EXIT_BOOT_FAILURE
                halt = True
            elif code == 0:  # it chose to end (a worker whose memory ran out starts afresh)
                log.info("child exited; restarting", extra={"event": "child_recycled", "child": child.role.name, "pid": pid})
                self._spawn(child.role)
            else:
                log.error("child died; restarting", extra={"event": "child_died", "child": child.role.name, "pid": pid, **how})
                self._spawn(child.role)
        if halt:
            self.stop(graceful=False)

    def _cannot_boot(self, name: str, code: int) -> bool:
        """A child that died before it booted: did it fail to boot (exited on its own, or was
        killed at boot again and again), or was it merely killed at a bad moment?"""
        return code >= 0 or self.killed_at_boot[name] >= MAX_KILLED_AT_BOOT

    def _release_job(self, child: Child) -> None:
        """A pipeline child that died holding a job: end that attempt now, not at lease expiry."""
        slot = child.role.slot
        if slot is None:
            return
        if slot.tool:  # the tool it was running (FFmpeg) lives in its own group: end it too
            _signal(slot.tool, signal.SIGKILL, group=True)
        held = slot.held()
        slot.reset()
        if held is None or self.janitor is None:
            return
        if child.role.kind == "finalizer":
            self.janitor.hand_back(held.media_id, held.lease_token)
        elif child.killed:
            self.janitor.release(held.media_id, held.lease_token, f"processing timed out after {self.settings.job_timeout} s")
        else:
            self.janitor.release(held.media_id, held.lease_token, "the worker processing this file stopped unexpectedly")

    def _kill_overdue_jobs(self) -> None:
        """A job past JOB_TIMEOUT (say, ImageMagick stuck in-process): kill its whole worker."""
        now = time.monotonic()
        limit = self.settings.job_timeout + min(KILL_GRACE, self.settings.job_timeout / 2)
        for pid, child in self._pipeline_children("worker"):
            held = child.role.slot.held() if child.role.slot else None
            if held is None or not held.started or child.killed:
                continue
            if now - held.started > limit:
                log.error(
                    "job timed out; killing its worker",
                    extra={"event": "worker_killed_timeout", "child": child.role.name, "pid": pid, "media_id": held.media_id},
                )
                child.killed = True
                _signal(pid, signal.SIGKILL, group=True)

    def _watch_pipeline(self) -> None:
        """Tell `/readyz` whether the pipeline makes progress, and replace a finalizer that
        stopped heart-beating (stuck in a call that never returns) after twice as long."""
        if self.pipeline is None or self.stopping:
            return
        now = time.monotonic()
        workers = [child.role.slot for _pid, child in self._pipeline_children("worker") if child.role.slot]
        finalizers = list(self._pipeline_children("finalizer"))
        slots = [child.role.slot for _pid, child in finalizers if child.role.slot]
        waiting = {
            Stall.FINALIZER: self.pipeline.results.pending(),
            Stall.WORKERS: self.pipeline.jobs.qsize() > 0 and any(slot.held() is None for slot in workers),
        }
        progress = {
            Stall.FINALIZER: max((slot.took for slot in slots), default=0.0),
            Stall.WORKERS: max((slot.took for slot in workers), default=0.0),
        }
        stall = self.stall_watch.update(waiting, progress, now)
        if stall != self.pipeline.health.stall:
            self.pipeline.health.stall = stall
            if stall:
                log.critical("the pipeline is stalled", extra={"event": "pipeline_stalled", "reason": stall.reason})
            else:
                log.info("the pipeline makes progress again", extra={"event": "pipeline_recovered"})
        limit = 2 * self.settings.pipeline_stall_seconds
        for pid, child in finalizers:
            slot = child.role.slot
            if slot is not None and now - slot.beat > limit and not child.killed:
                log.error("finalizer stopped heart-beating; killing it", extra={"event": "finalizer_killed_stalled", "pid": pid})
                child.killed = True
                _signal(pid, signal.SIGKILL, group=True)

    def _watch_embedded(self) -> None:
        """Start again an embedded PostgreSQL or Redis that died (kill -9, a PANIC on a full
        disk), as any child; while it cannot start, try again every few seconds."""
        if self.stopping:
            return
        now = time.monotonic()
        for service in self.embedded:
            if now < self.embedded_retry.get(service.name, 0.0) or service.alive():
                continue
            if service.name not in self.embedded_retry:
                log.critical("embedded server died; restarting it", extra={"event": "embedded_died", "service": service.name})
            try:
                service.restart()
            except Exception as exc:  # noqa: BLE001 - whatever it was, try again shortly
                self.embedded_retry[service.name] = now + EMBEDDED_RETRY_SECONDS
                log.error(
                    "embedded server cannot start yet",
                    extra={"event": "embedded_restart_failed", "service": service.name, "error": str(exc)},
                )
                continue
            self.embedded_retry.pop(service.name, None)
            log.info("embedded server restarted", extra={"event": "embedded_restarted", "service": service.name})

    def _pipeline_children(self, kind: str) -> Iterator[tuple[int, Child]]:
        return ((pid, child) for pid, child in self.children.items() if child.role.kind == kind)

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

    def _queue_signal(self, signum: int, _frame: FrameType | None) -> None:
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


class StallWatch:
    """Judges stalls: work has been waiting for `seconds` and nobody took any of it meanwhile."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: dict[Stall, float] = {}

    def update(self, waiting: dict[Stall, bool], progress: dict[Stall, float], now: float) -> Stall:
        """`waiting`: whether work of each kind waits; `progress`: when it was last taken."""
        for kind, is_waiting in waiting.items():
            if not is_waiting:
                self.since.pop(kind, None)
            elif progress[kind] >= self.since.get(kind, -1.0):  # taken since we first saw it waiting
                self.since[kind] = now
        stalled = [kind for kind, since in self.since.items() if now - since >= self.seconds]
        return min(stalled, default=Stall.NONE)


def _signal(pid: int, sig: int, group: bool = False) -> None:
    """Send `sig` to a child, or to its whole process group; a child already gone is fine."""
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def roles(settings: Settings, context: SpawnContext, pipeline: Pipeline | None, owner: str) -> list[Role]:
    """The processes this node runs (NODE_ROLE): HTTP, the media workers and the finalizer."""
    found = [Role("http", "http", server.serve, (pipeline,))] if settings.serves_http else []
    if pipeline is not None:
        slots = [Slot(context) for _ in range(settings.workers)]
        found += [
            Role(f"worker {n}", "worker", worker.run, (pipeline, slot, owner), slot=slot) for n, slot in enumerate(slots, 1)
        ]
        last = Slot(context)
        found.append(Role("finalizer", "finalizer", finalizer.run, (pipeline, last), phase=1, slot=last))
    return found


def serve(settings: Settings, embedded: list[Embedded] | None = None) -> int:
    """Recover, then run this node's roles under one supervisor until stopped (and the embedded
    servers `prepare` started, restarted if they die). A node with the pipeline also runs the
    janitor and listens for jobs that nodes with HTTP alone accepted. A node whose clock is far
    off the database's refuses to start: its leases, tokens and file ages would be wrong."""
    context = multiprocessing.get_context("spawn")
    pipeline = Pipeline.create(context, settings.job_queue_size) if settings.runs_pipeline else None
    owner = lease_owner(settings.node_name, uuid.uuid4().hex[:12])
    db = Database(settings)
    check_clock(db, settings)
    doing = f"serving http://{settings.http_bind}/" if settings.serves_http else "processing media (NODE_ROLE=pipeline)"
    print(f"MemeDroid is {doing} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    janitor = listener = None
    if pipeline is not None:
        janitor = Janitor(settings, db, open_storage(settings).ensure(), pipeline.jobs, owner)
        janitor.tick()  # start-up recovery, before any worker takes a job
        listener = JobListener(db, JobQueue(db, pipeline.jobs))
    try:
        return Supervisor(settings, roles(settings, context, pipeline, owner), janitor, pipeline, listener, embedded).run()
    finally:
        db.close()


def main(settings: Settings) -> int:
    """`bin/memedroid-supervisor` and `memedroid supervisor` (which load the settings)."""
    settings.warn_if_generated_secret()
    if settings.runs_pipeline:
        settings.check_live_orphan_grace()
    with ExitStack() as services:
        embedded: list[Embedded] = []
        settings = prepare(settings, services, embedded)
        return serve(settings, embedded)
