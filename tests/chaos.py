"""The chaos storm: a steady stream of real uploads (JPEGs, GIFs, short clips, some sent slowly)
into a running system while its processes are killed with SIGKILL at random moments: idle and
busy media workers, the finalizer, HTTP workers while an upload is in flight, FFmpeg children;
and, beside the kills, the faults of the machine one at a time (`Faults`): the storage disk
fills and frees, a session holds a lock on `posts` or on the media being processed for longer
than a lease, Redis refuses writes, the (embedded) PostgreSQL is killed and started again.

`tests/test_chaos.py` runs it for a few minutes in every `make test`; `bench/chaos.py
--minutes N` runs it for as long as an operator likes. The choices come from a seeded random
generator (the machine's timing still varies from run to run).

After the storm and one lease, `Storm.verdict()` lists every broken promise: an accepted
upload not completed, an upload answered anything but 202 (or its connection lost with a
killed HTTP worker, or 503/507 while a fault lasts), a row still pending/processing or failed,
an orphan file, a wedge that `/readyz` did not report, a disk full or a lock held without
`/readyz` saying so, the supervisor gone. The clients renew their access token when it
expires, as API clients do, so a storm of any length keeps uploading.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fixtures
import psutil
import psycopg
import requests
from disks import MiB, SmallDisk
from helpers import refusing_writes
from stores import name_in_area
from system import System

# Time compressed: short leases and sweeps so that recovery happens many times a minute.
# MAX_ATTEMPTS is raised because the storm kills busy workers far more often than production
# does; what it checks is that nothing is lost or wedged, not the attempt budget.
STORM_ENV = {
    "WORKERS": "3",
    "WEB_CONCURRENCY": "2",
    "LEASE_SECONDS": "5",
    "HEARTBEAT_SECONDS": "1",
    "JANITOR_INTERVAL": "1",
    "HOT_RANK_INTERVAL": "2",  # hot ranks recomputed all along, between the kills
    "ORPHAN_GRACE_SECONDS": "10",  # the least a running system takes (twice DB_TIMEOUT)
    "ACCESS_TOKEN_SECONDS": "60",  # the clients renew theirs under the storm too
    "PIPELINE_STALL_SECONDS": "5",
    "MAX_ATTEMPTS": "10",  # a lock held past the lease also costs the job it holds an attempt
    "JOB_TIMEOUT": "60",
    "DISK_RESERVE_BYTES": str(32 * MiB),
    "LOG_LEVEL": "INFO",
}
RENEWED = "401, token renewed"
EXPECTED_ANSWERS = ("202", "connection lost", RENEWED)  # a killed HTTP worker loses its connection
DURING_FAULTS = ("503", "507")  # answers a fault explains: while it lasts, and for RECOVERY_SECONDS after
RECOVERY_SECONDS = 10
FAULTS = ("disk full", "lock on posts", "lock on media", "redis refuses writes", "postgres killed")
SHOWN_ON_READYZ = ("disk full", "lock on posts")  # faults /readyz must report while they last
ELDER = "worker 1"  # never killed: it must keep working past any age-related limit
WEDGE_SECONDS = 20  # work waiting and nothing completed for this long is a wedge
TARGETS = ("busy worker", "idle worker", "finalizer", "http worker mid-upload", "ffmpeg")


@dataclass
class Tally:
    """What happened during a storm."""

    uploads: Counter[str] = field(default_factory=Counter)  # kind -> sent
    accepted: list[int] = field(default_factory=list)  # post ids answered 202
    answers: Counter[str] = field(default_factory=Counter)  # status code, or "connection lost"
    refused: list[tuple[float, str]] = field(default_factory=list)  # when an upload got a 503 or 507, and which
    kills: Counter[str] = field(default_factory=Counter)
    faults: list[tuple[str, float, float]] = field(default_factory=list)  # what, from, until (monotonic)
    samples: list[tuple[float, bool, int, int]] = field(default_factory=list)  # time, ready, completed, backlog
    elder_jobs_after: list[float] = field(default_factory=list)  # the elder worker's age at each job it finished
    most_attempts: int = 0  # the most attempts any media needed

    def summary(self) -> dict[str, Any]:
        not_ready = sum(1 for _t, ready, _c, _b in self.samples if not ready)
        return {
            "uploads": dict(self.uploads),
            "accepted": len(self.accepted),
            "answers": dict(self.answers),
            "kills": dict(self.kills),
            "faults": dict(Counter(kind for kind, _start, _end in self.faults)),
            "readyz_samples": len(self.samples),
            "readyz_not_ready": not_ready,
            "elder_worker_oldest_job_s": round(max(self.elder_jobs_after, default=0.0)),
            "most_attempts": self.most_attempts,
        }


class Media:
    """Good inputs made once; each upload gets distinct bytes (so each is processed) cheaply:
    a JPEG comment, a GIF comment block, or an AVI `JUNK` chunk."""

    def __init__(self, folder: Path) -> None:
        self.jpeg = fixtures.jpeg(folder, "storm.jpg", width=640, height=480).read_bytes()
        self.gif = fixtures.animated_gif(folder).read_bytes()
        self.clip = fixtures.mpeg4_avi(folder, seconds=3, size="480x270").read_bytes()  # must be transcoded
        self.count = 0
        self._lock = threading.Lock()

    def make(self, kind: str) -> bytes:
        with self._lock:
            self.count += 1
            mark = f"storm {self.count}".encode()
        if kind == "jpeg":
            return self.jpeg[:2] + b"\xff\xfe" + (len(mark) + 2).to_bytes(2, "big") + mark + self.jpeg[2:]
        if kind == "gif":
            return self.gif[:-1] + b"\x21\xfe" + bytes([len(mark)]) + mark + b"\x00\x3b"
        return self.clip + b"JUNK" + len(mark).to_bytes(4, "little") + mark  # a RIFF chunk readers skip


class LogFollower:
    """Reads the supervisor's JSON log as it grows and keeps which workers are busy."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.offset = 0
        self.busy: set[str] = set()
        self.finished: list[tuple[str, float]] = []  # (role, wall time) of each job_processed

    def poll(self) -> None:
        with self.system.log_path.open() as log:
            log.seek(self.offset)
            lines = log.readlines()
            self.offset = log.tell()
        for line in lines:
            if not line.endswith("\n"):
                self.offset -= len(line.encode())  # half-written: read it again next time
                break
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            event, role = record.get("event"), record.get("role", "")
            if event == "job_started":
                self.busy.add(role)
            elif event == "job_processed":
                self.busy.discard(role)
                self.finished.append((role, time.time()))
            elif event in ("child_died", "child_started"):
                self.busy.discard(record.get("child", ""))


class Faults:
    """The faults of the machine, one at a time beside the kills, each for longer than a lease:
    the storage disk fills (to half the reserve) and frees; a session locks `posts` as a
    `CREATE INDEX` does, or the rows of the media being processed; Redis refuses writes (out of
    memory); the embedded PostgreSQL is killed (its supervisor starts it again). The disk fault
    needs `disk` (a tmpfs mount); PostgreSQL is killed only when the supervisor runs its own."""

    def __init__(self, system: System, redis_url: str, disk: SmallDisk | None, rng: random.Random, tally: Tally) -> None:
        self.system = system
        self.redis_url = redis_url
        self.disk = disk
        self.random = rng
        self.tally = tally
        embedded = not system.env.get("DATABASE_URL")  # a server of the supervisor's own, which may be killed
        cannot = {"disk full": disk is None, "postgres killed": not embedded}
        self.kinds = [kind for kind in FAULTS if not cannot.get(kind)]

    def run(self, stop: threading.Event) -> None:
        """Faults of every kind in turn (in a shuffled order each round) until `stop`."""
        order: list[str] = []
        while not stop.wait(self.random.uniform(8, 20)):
            if not order:
                order = self.random.sample(self.kinds, len(self.kinds))
            kind = order.pop()
            started = time.monotonic()
            try:
                undo = self._start(kind)
            except (OSError, psycopg.Error):  # the database is away (a kill still recovering): later
                continue
            try:
                stop.wait(self.random.uniform(6, 14))
            finally:
                undo()
                self.tally.faults.append((kind, started, time.monotonic()))

    def _start(self, kind: str) -> Callable[[], None]:
        """Begin a fault; return what ends it."""
        if kind == "disk full":
            assert self.disk is not None
            self.disk.fill(leave=int(self.system.env["DISK_RESERVE_BYTES"]) // 2)
            return self.disk.free_up
        if kind == "redis refuses writes":
            return refusing_writes(self.redis_url)
        if kind == "postgres killed":
            os.kill(int(self.system.postmaster_pid.read_text().split()[0]), signal.SIGKILL)
            return self._postgres_back
        holder = psycopg.connect(self.system.database_url)
        if kind == "lock on posts":
            holder.execute("LOCK TABLE posts IN SHARE MODE")
        else:
            holder.execute("SELECT id FROM media WHERE status IN ('pending', 'processing') FOR UPDATE")
        return holder.close  # its transaction rolls back, the locks go

    def _postgres_back(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.system.database_url, connect_timeout=2).close()
                return
            except psycopg.Error:
                time.sleep(0.5)


class Storm:
    def __init__(self, system: System, folder: Path, seed: int, faults: Callable[[Tally], Faults] | None = None) -> None:
        """`faults`, given the storm's tally, makes the faults to run beside the kills."""
        self.system = system
        self.seed = seed
        self.random = random.Random(seed)
        self.media = Media(folder)
        self.tally = Tally()
        self.faults = faults(self.tally) if faults is not None else None
        self.log = LogFollower(system)
        self.tokens = system.tokens("storm")
        self.stop = threading.Event()
        self.in_flight = 0  # slow uploads being sent right now
        self._lock = threading.Lock()
        self._renewing = threading.Lock()

    # --- the storm -------------------------------------------------------------------------

    def run(self, seconds: float) -> Tally:
        """Upload and kill for `seconds`, sampling readiness and progress all along."""
        elder = self.system.role(ELDER)[0]
        threads = [threading.Thread(target=self._uploads, args=(random.Random(self.seed + n),), daemon=True) for n in (1, 2)]
        threads += [threading.Thread(target=self._chaos, daemon=True), threading.Thread(target=self._watch, daemon=True)]
        if self.faults is not None:
            threads.append(threading.Thread(target=self.faults.run, args=(self.stop,), daemon=True))
        for thread in threads:
            thread.start()
        self.stop.wait(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        self.log.poll()
        if elder.is_running():  # else verdict() reports it
            born = elder.create_time()
            self.tally.elder_jobs_after = [when - born for role, when in self.log.finished if role == ELDER]
        self.elder = elder
        return self.tally

    def _uploads(self, rng: random.Random) -> None:
        while not self.stop.is_set():
            kind = rng.choices(["jpeg", "gif", "clip"], weights=[6, 2, 2])[0]
            self.tally.uploads[kind] += 1
            data = self.media.make(kind)
            token = self.tokens["access_token"]
            try:
                response = self._send(data, token, slow=kind == "clip")
                answer = str(response.status_code)
                if response.status_code == 401 and self._renew(token):
                    answer = RENEWED  # its access token expired (ACCESS_TOKEN_SECONDS), as a client's does
                self.tally.answers[answer] += 1
                if response.status_code == 202:
                    self.tally.accepted.append(response.json()["id"])
                elif answer in DURING_FAULTS:
                    self.tally.refused.append((time.monotonic(), answer))
            except requests.RequestException:
                self.tally.answers["connection lost"] += 1  # its HTTP worker was killed
            self.stop.wait(rng.uniform(0.2, 0.6))

    def _renew(self, expired: str) -> bool:
        """Exchange the refresh token for a new access token, as an API client does (once for
        both upload threads); retried when the chaos kills the HTTP worker that has it, and
        after the Retry-After of a 503 (a fault of the database)."""
        with self._renewing:
            for _ in range(20):
                if self.tokens["access_token"] != expired:
                    return True
                bearer = {"Authorization": f"Bearer {self.tokens['refresh_token']}"}
                try:
                    response = self.system.http.post(f"{self.system.url}/api/v1/auth/refresh", headers=bearer, timeout=30)
                except requests.RequestException:
                    continue
                if response.status_code == 200:
                    self.tokens["access_token"] = response.json()["access_token"]
                elif response.status_code == 503:
                    time.sleep(min(5, int(response.headers.get("Retry-After", "1"))))
            return self.tokens["access_token"] != expired

    def _send(self, data: bytes, token: str, slow: bool) -> requests.Response:
        boundary = "stormboundary"
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'.encode()
        body = head + data + f"\r\n--{boundary}--\r\n".encode()

        def trickle() -> Iterator[bytes]:  # about a second on the wire: a target for the chaos
            with self._lock:
                self.in_flight += 1
            try:
                for start in range(0, len(body), 8192):
                    yield body[start : start + 8192]
                    time.sleep(1.0 / max(1, len(body) // 8192))
            finally:
                with self._lock:
                    self.in_flight -= 1

        return self.system.http.post(
            f"{self.system.url}/api/v1/posts",
            headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
            data=trickle() if slow else body,
            timeout=60,
        )

    def _chaos(self) -> None:
        while not self.stop.wait(self.random.uniform(0.8, 2.5)):
            target = self.random.choice(TARGETS)
            victim = self._hunt(target)
            if victim is None:
                continue
            try:
                victim.kill()
                self.tally.kills[target] += 1
            except psutil.NoSuchProcess:
                pass

    def _hunt(self, target: str) -> psutil.Process | None:
        """A process that fits `target`, watched for up to two seconds (busy moments are short)."""
        deadline = time.monotonic() + 2
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.log.poll()
            victim = self._victim(target)
            if victim is not None:
                return victim
            time.sleep(0.05)
        return None

    def _victim(self, target: str) -> psutil.Process | None:
        system = self.system
        if target in ("busy worker", "idle worker"):
            busy = target == "busy worker"
            names = [f"worker {n}" for n in range(2, int(system.env["WORKERS"]) + 1)]
            fits = [name for name in names if (name in self.log.busy) == busy]
            found = [p for name in fits for p in system.role(name)]
        elif target == "finalizer":
            found = system.role("finalizer")
        elif target == "ffmpeg":
            found = system.tools("ffmpeg")
        else:
            if not self.in_flight:
                return None
            found = [c for master in system.role("http") for c in _children(master)]
        return self.random.choice(found) if found else None

    def _watch(self) -> None:
        conn = None
        while not self.stop.wait(0.5):
            try:
                ready = self.system.http.get(f"{self.system.url}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                ready = False
            try:
                conn = conn or psycopg.connect(self.system.database_url, autocommit=True, connect_timeout=2)
                completed, backlog = _progress(conn)
            except psycopg.Error:  # the database was killed: no progress to read meanwhile
                conn = None
                continue
            self.tally.samples.append((time.monotonic(), ready, completed, backlog))

    # --- the verdict -----------------------------------------------------------------------

    def settle(self, timeout: float = 180) -> None:
        """Wait until nothing is pending or processing, then for the janitor's orphan sweep."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.system.database_url, autocommit=True) as conn:
            while _progress(conn)[1] and time.monotonic() < deadline:
                time.sleep(0.5)
        grace = float(self.system.env["ORPHAN_GRACE_SECONDS"]) + 2 * float(self.system.env["JANITOR_INTERVAL"])
        while self._orphans() and time.monotonic() < deadline:
            time.sleep(grace / 4)

    def verdict(self) -> list[str]:
        """Every promise the storm broke (empty: none)."""
        problems = []
        if not self.elder.is_running():
            problems.append(f"{ELDER}, never killed by the storm, died")
        if self.system.process.poll() is not None:
            problems.append(f"the supervisor exited with {self.system.process.returncode}")
        with psycopg.connect(self.system.database_url) as conn:
            statuses = dict(
                conn.execute(
                    "SELECT p.id, m.status FROM posts AS p JOIN media AS m ON p.media_id = m.id WHERE p.id = ANY(%s)",
                    (self.tally.accepted,),
                ).fetchall()
            )
            unfinished = conn.execute(
                "SELECT id, status, attempts, error FROM media WHERE status <> 'completed' ORDER BY id"
            ).fetchall()
            self.tally.most_attempts = conn.execute("SELECT coalesce(max(attempts), 0) FROM media").fetchone()[0]
            unranked = conn.execute(  # every post completed within the week has its hot rank, in both slots
                "SELECT DISTINCT r.post_id FROM post_ranks AS r JOIN posts AS p ON r.post_id = p.id "
                "JOIN media AS m ON p.media_id = m.id WHERE m.status = 'completed' AND r.hot = 0 ORDER BY 1"
            ).fetchall()
        lost = [post_id for post_id in self.tally.accepted if statuses.get(post_id) != "completed"]
        if lost:
            problems.append(f"accepted uploads not completed: {[(p, statuses.get(p)) for p in lost]}")
        if unfinished:
            problems.append(f"media rows not completed: {unfinished}")
        if unranked:
            problems.append(f"completed posts without a hot rank: {unranked}")
        expected = (*EXPECTED_ANSWERS, *DURING_FAULTS)
        if unexpected := {answer: n for answer, n in self.tally.answers.items() if answer not in expected}:
            problems.append(f"answers no upload of the storm should get: {unexpected}")
        if unexplained := [(round(when), answer) for when, answer in self.tally.refused if not self._faulty(when)]:
            problems.append(f"uploads refused with no fault to explain it: {unexplained[:10]} ({len(unexplained)} in all)")
        problems += [f"{kind} for {end - start:.0f} s and /readyz always said ready" for kind, start, end in self._unreported()]
        if orphans := self._orphans():
            problems.append(f"orphan files: {orphans[:10]} ({len(orphans)} in all)")
        problems += [f"wedged with /readyz saying ready: {window}" for window in self._silent_wedges()]
        return problems

    def _faulty(self, when: float) -> bool:
        """Whether a fault lasted at `when`, or ended less than RECOVERY_SECONDS before."""
        return any(start <= when <= end + RECOVERY_SECONDS for _kind, start, end in self.tally.faults)

    def _unreported(self) -> list[tuple[str, float, float]]:
        """Faults that /readyz must report (a full disk, requests stuck on a lock) and did not,
        though samples were taken while they lasted."""
        found = []
        for kind, start, end in self.tally.faults:
            during = [ready for when, ready, _c, _b in self.tally.samples if start + 3 <= when <= end]
            if kind in SHOWN_ON_READYZ and during and all(during):
                found.append((kind, start, end))
        return found

    def _orphans(self) -> list[str]:
        """Files no row needs: anything in raw/ or tmp/ (nothing failed), media/ files no row names."""
        with psycopg.connect(self.system.database_url) as conn:
            kept = {name for row in conn.execute("SELECT path, thumbnail_path FROM media") for name in row if name}
        stray = [str(p) for area in ("raw", "tmp") for p in self.system.files(area)]
        return stray + [str(p) for p in self.system.files("media") if name_in_area(p, "media") not in kept]

    def _silent_wedges(self) -> list[tuple[float, float]]:
        """Windows of WEDGE_SECONDS or more with work waiting and nothing completed, during
        which `/readyz` never said not ready."""
        windows, start, last_completed, saw_not_ready = [], None, -1, False
        for when, ready, completed, backlog in self.tally.samples:
            if backlog and completed == last_completed:
                start = when if start is None else start
                saw_not_ready = saw_not_ready or not ready
                if when - start >= WEDGE_SECONDS and not saw_not_ready:
                    windows.append((start, when))
                    start, saw_not_ready = None, False
            else:
                start, saw_not_ready = None, False
            last_completed = completed
        return windows


def _progress(conn: psycopg.Connection) -> tuple[int, int]:
    """(completed media, media pending or processing)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status IN ('pending', 'processing'))"
        " FROM media"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children()
    except psutil.NoSuchProcess:
        return []
