"""The whole system as an operator runs it: `bin/memedroid-supervisor` in a subprocess,
spoken to over real HTTP, its JSON log collected from stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

import psutil
import requests
from helpers import PASSWORD, free_port
from stores import read_file, stored_files

ROOT = Path(__file__).resolve().parent.parent
SUPERVISOR = ROOT / "bin" / "memedroid-supervisor"


@contextmanager
def database(folder: Path, server: dict[str, str] | None = None) -> Iterator[str]:
    """A migrated database for a benchmark: DATABASE_URL's, or an embedded PostgreSQL in `folder`
    for as long as the block runs, started with the `server` settings (such as shared_buffers)."""
    from memedroid.runtime import migrations
    from memedroid.runtime.embedded import EmbeddedPostgres

    url = os.environ.get("DATABASE_URL")
    embedded = None if url else EmbeddedPostgres(folder / "pgdata", cleanup="delete")
    try:
        if embedded is not None and server:
            _configure(folder / "pgdata", server)
        url = url or embedded.start("memedroid")
        migrations.migrate(url)
        yield url
    finally:
        if embedded is not None:
            embedded.stop()


@contextmanager
def throwaway_redis() -> Iterator[str]:
    """The URL of a redis-server of a benchmark's own, for as long as the block runs."""
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        redis.terminate()
        redis.wait(10)


def _configure(pgdata: Path, server: dict[str, str]) -> None:
    """Create the embedded cluster in `pgdata` with settings that take a restart."""
    import psycopg
    from psycopg import sql

    from memedroid.runtime.embedded import EmbeddedPostgres

    first = EmbeddedPostgres(pgdata, cleanup="stop")
    try:
        with psycopg.connect(first.start("memedroid"), autocommit=True) as conn:
            for name, value in server.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    finally:
        first.stop()


class System:
    """One supervisor process tree; `restart()` runs a new one on the same database and storage."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.env = {
            **os.environ,
            "HTTP_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": "1",
            "BCRYPT_ROUNDS": "4",
            "VAR_DIR": str(folder / "var"),
            "STORAGE_DIR": str(folder / "storage"),
            "JWT_SECRET_KEY": "system-test-secret-" + "x" * 40,
            "LOGIN_RATE_LIMIT": "1000/minute",
            "LOGIN_NAME_RATE_LIMIT": "1000/minute",
            "UPLOAD_RATE_LIMIT": "10000/hour",
            "FEED_LOCAL_SECONDS": "0",  # the tests read their writes at once
            "DISK_RESERVE_BYTES": str(8 << 20),  # the machine's disk may be small; tests/test_disks.py fills its own
            **env,
        }
        self.storage = Path(self.env["STORAGE_DIR"])
        self.runs = 0
        self.http = requests.Session()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        """DATABASE_URL, or the embedded PostgreSQL's that the supervisor runs without one."""
        if self.env.get("DATABASE_URL"):
            return self.env["DATABASE_URL"]
        lines = self.postmaster_pid.read_text().splitlines()  # pid, data, start, port, socket folder, ...
        return f"host={lines[4]} port={lines[3]} user=postgres dbname=memedroid"

    @property
    def postmaster_pid(self) -> Path:
        return Path(self.env["VAR_DIR"]) / "pgdata" / "postmaster.pid"

    def start(self) -> None:
        self.runs += 1
        self.log_path = self.folder / f"supervisor-{self.runs}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen([sys.executable, str(SUPERVISOR)], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> System:
        """Wait until the API is ready and every pipeline process of this run has booted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if self.http.get(f"{self.url}/readyz", timeout=2).status_code == 200 and self._pipeline_booted():
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(self.log())

    def answers(self) -> bool:
        """Whether `/readyz` says ready now (a node with HTTP alone has no pipeline to wait for)."""
        try:
            return self.http.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _pipeline_booted(self) -> bool:
        workers = int(self.env.get("WORKERS") or os.cpu_count() or 1)
        return len(self.role("worker")) >= workers and len(self.role("finalizer")) == 1

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill_everything(self) -> None:
        """kill -9 the supervisor and every process it started (as a power cut would)."""
        tree = self.tree()
        self.process.kill()
        for process in tree:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(10)
        psutil.wait_procs(tree, timeout=10)

    def tree(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def role(self, name: str) -> list[psutil.Process]:
        """Processes whose title names `name` (e.g. "worker", "finalizer", "http")."""
        found = []
        for process in self.tree():
            try:
                if f"memedroid: {name}" in " ".join(process.cmdline()):
                    found.append(process)
            except psutil.NoSuchProcess:
                continue
        return found

    def tools(self, name: str = "ffmpeg") -> list[psutil.Process]:
        """Processes called `name` that the media workers are running now."""
        found = []
        for worker in self.role("worker"):
            try:
                found += [child for child in worker.children() if child.name() == name]
            except psutil.NoSuchProcess:  # the worker, or a child it was running, is gone
                continue
        return found

    def log(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.folder.glob("supervisor-*.log")))

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines of the log. A line a process was writing when it was killed may be
        torn (the kernel stops a write at a page boundary for a SIGKILL), and the next line
        then runs on from it: such a line is left out."""
        found = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def events(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event and all(r.get(k) == v for k, v in match.items())]

    # --- API -------------------------------------------------------------------------------

    def tokens(self, username: str = "alice") -> dict[str, str]:
        """Register and log in `username`; return the login response (both tokens)."""
        body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        assert self.http.post(f"{self.url}/api/v1/auth/register", json=body).status_code == 201
        response = self.http.post(f"{self.url}/api/v1/auth/login", json={"login": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def sign_up(self, username: str = "alice") -> dict[str, str]:
        """Register and log in; return headers that authenticate as `username`."""
        return {"Authorization": f"Bearer {self.tokens(username)['access_token']}"}

    def upload(self, auth: dict[str, str], path: Path, name: str | None = None, **fields: Any) -> requests.Response:
        with path.open("rb") as file:
            return self.http.post(
                f"{self.url}/api/v1/posts",
                headers=auth,
                files={"file": (name or path.name, file, "application/octet-stream")},
                data=fields,
                timeout=60,
            )

    def post(self, auth: dict[str, str], post_id: int, wait: float = 0) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/api/v1/posts/{post_id}", headers=auth, params={"wait": wait}, timeout=wait + 30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_done(self, auth: dict[str, str], post_id: int, timeout: float = 90) -> dict[str, Any]:
        """Long-poll a post until it is completed or failed."""
        deadline = time.monotonic() + timeout
        while True:
            post = self.post(auth, post_id, wait=min(10.0, max(0.0, deadline - time.monotonic())))
            if post["status"] in ("completed", "failed") or time.monotonic() >= deadline:
                return post

    def get(self, url: str) -> requests.Response:
        """A file the API links to: served by the app, or from the store's own address."""
        return self.http.get(url if "://" in url else f"{self.url}{url}", timeout=30)

    def fetch(self, url: str) -> bytes:
        response = self.get(url)
        assert response.status_code == 200, url
        return response.content

    def files(self, area: str) -> list[PurePath]:
        """The files of `raw`, `media` or `tmp`, in the folder or bucket this system uses."""
        return stored_files(self.env, area)

    def read(self, path: PurePath) -> bytes:
        return read_file(self.env, path)


class PeakRss(threading.Thread):
    """Samples the resident memory of each media worker (and, with `tools`, of each process a
    worker started, such as FFmpeg) until stopped; keeps the largest single process's."""

    def __init__(self, system: System, tools: bool = False) -> None:
        super().__init__(daemon=True)
        self.system, self.tools, self.peak = system, tools, 0
        self.stopped = threading.Event()

    def start(self) -> PeakRss:
        super().start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            for worker in self.system.role("worker"):
                try:
                    for process in [worker, *(worker.children() if self.tools else [])]:
                        self.peak = max(self.peak, process.memory_info().rss)
                except psutil.Error:  # gone between listing and sampling
                    pass
