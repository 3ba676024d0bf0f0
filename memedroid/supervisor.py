"""The supervisor: prepares the database, then starts and watches MemeDroid's processes.

Built like gunicorn's arbiter: signal handlers only queue the signal and wake the main loop,
which reaps children, respawns the ones that died, halts when one fails at boot instead of
respawning it forever, and stops gracefully (TERM, wait, then KILL) on SIGTERM or SIGINT.
Every child is spawned (never forked from this threaded process) in its own process group.
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
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from typing import Any

from memedroid import http, logs, migrations
from memedroid.embedded import EmbeddedPostgres
from memedroid.errors import ConfigError
from memedroid.settings import Settings

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 30.0
EXIT_BOOT_FAILURE = 3
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Role:
    """A kind of child process: `target(settings, ready, *args)` runs in a spawned process and
    calls `ready()` once it has booted (a child that dies before that failed at boot)."""

    name: str
    target: Callable[..., None]
    args: tuple[Any, ...] = ()


@dataclass
class Child:
    role: Role
    process: SpawnProcess
    booted: Event


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

    def __init__(self, settings: Settings, roles: list[Role]) -> None:
        self.settings = settings
        self.roles = roles
        self.context = multiprocessing.get_context("spawn")
        self.children: dict[int, Child] = {}
        self.signals: list[int] = []
        self.stopping = False
        self.exit_code = 0

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        """Start every role and supervise until stopped; return the process exit code."""
        self._install_signals()
        for role in self.roles:
            self._spawn(role)
        log.info("supervisor started", extra={"event": "supervisor_started", "children": len(self.children)})
        while self.children:
            self._handle_signals()
            self._reap()
            if not self.children:
                break
            sentinels = [child.process.sentinel for child in self.children.values()]
            wait([*sentinels, self._wakeup_r], timeout=1.0)
            self._drain_wakeup()
        log.info("supervisor stopped", extra={"event": "supervisor_stopped", "exit_code": self.exit_code})
        return self.exit_code

    def _spawn(self, role: Role) -> None:
        booted = self.context.Event()
        process = self.context.Process(target=_child_main, args=(role, self.settings, booted), name=role.name)
        process.start()
        assert process.pid is not None
        self.children[process.pid] = Child(role, process, booted)
        log.info("child started", extra={"event": "child_started", "child": role.name, "pid": process.pid})

    def _reap(self) -> None:
        for pid, child in list(self.children.items()):
            code = child.process.exitcode
            if code is None:
                continue
            del self.children[pid]
            how = {"exit_code": code} if code >= 0 else {"signal": signal.Signals(-code).name}
            if self.stopping:
                log.info("child stopped", extra={"event": "child_stopped", "child": child.role.name, "pid": pid, **how})
            elif not child.booted.is_set():
                log.critical(
                    "child failed at boot; halting",
                    extra={"event": "child_boot_failed", "child": child.role.name, "pid": pid, **how},
                )
                self.exit_code = EXIT_BOOT_FAILURE
                self.stop(graceful=False)
            else:
                log.error("child died; restarting", extra={"event": "child_died", "child": child.role.name, "pid": pid, **how})
                self._spawn(child.role)

    def stop(self, graceful: bool = True) -> None:
        """Graceful: SIGTERM every child and give them time; otherwise (or after) SIGKILL."""
        if self.stopping and graceful:
            return
        self.stopping = True
        for pid in self.children:
            # TERM goes to the child, which stops its own helpers in order; KILL to its group.
            if graceful:
                _signal(pid, signal.SIGTERM)
            else:
                _signal(pid, signal.SIGKILL, group=True)
        if graceful:
            deadline = time.monotonic() + GRACEFUL_SECONDS
            while self.children and time.monotonic() < deadline:
                wait([c.process.sentinel for c in self.children.values()], timeout=0.2)
                self._reap()
                if self.signals:  # a second TERM/INT while stopping: stop hard
                    self.signals.clear()
                    break
            for pid in self.children:
                _signal(pid, signal.SIGKILL, group=True)
        for child in list(self.children.values()):
            child.process.join(5)
        self._reap()

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
            name = signal.Signals(signum).name
            log.info("signal received", extra={"event": "signal", "signal": name})
            self.stop(graceful=signum != signal.SIGQUIT)


def _signal(pid: int, sig: int, group: bool = False) -> None:
    """Send `sig` to a child, or to its whole process group; a child already gone is fine."""
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def prepare(settings: Settings) -> tuple[Settings, EmbeddedPostgres | None]:
    """Start the embedded PostgreSQL when no `DATABASE_URL` is given, then migrate."""
    embedded = None
    if not settings.database_url:
        embedded = EmbeddedPostgres(settings.var_dir / "pgdata")
        settings = settings.replace(database_url=embedded.start())
    migrations.migrate(settings.database_url)
    return settings, embedded


def roles(settings: Settings) -> list[Role]:
    """The processes MemeDroid runs."""
    return [Role("http", http.serve)]


def main() -> int:
    """`bin/memedroid-supervisor` and `memedroid supervisor`."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"memedroid: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, role="supervisor")
    settings.warn_if_generated_secret()
    embedded = None
    try:
        settings, embedded = prepare(settings)
        print(f"MemeDroid is serving http://{settings.http_bind}/ (Ctrl-C stops it)", file=sys.stderr, flush=True)
        return Supervisor(settings, roles(settings)).run()
    finally:
        if embedded is not None:
            embedded.stop()
