"""The system behind a real nginx (Debian's, in the foreground, on the configuration
`memedroid proxy` renders into a temp folder): the micro-cache, its bypass, how soon a removed
post leaves it, streamed uploads, client addresses and conditional requests."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fixtures
import psutil
import pytest
import requests
from helpers import PASSWORD, free_port, grant, wait_for, wait_for_port
from requests.adapters import HTTPAdapter
from system import System

from memedroid.runtime.proxy import Proxy
from memedroid.settings import Settings

pytestmark = pytest.mark.slow

GONE_WITHIN = 1 + 1 + 0.25  # HTTP_MAX_AGE + 1 s, and a refresh's round trip


class Front:
    """An nginx in front of a system."""

    def __init__(self, system: System, folder: Path) -> None:
        self.system = system
        self.port = free_port()
        reachable(system.storage / "media")  # nginx's workers (www-data) serve the files
        proxy = Proxy.from_settings(Settings.from_env(system.env), f"127.0.0.1:{self.port}", folder)
        self.proxy = dataclasses.replace(proxy, access_log=str(folder / "access.log"))
        folder.mkdir(parents=True, exist_ok=True)
        self.stderr = (folder / "stderr.log").open("w")
        self.process = subprocess.Popen(self.proxy.command(), stdout=subprocess.DEVNULL, stderr=self.stderr)
        wait_for_port(self.port)
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.url}{path}", timeout=30, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.stderr.close()


def reachable(folder: Path) -> None:
    """Let anyone through `folder` and the folders above it (pytest's own are 0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder, *folder.parents):
        path.chmod(path.stat().st_mode | 0o001)


@pytest.fixture
def behind_nginx(start_system: Callable[..., System], tmp_path: Path) -> Iterator[Callable[..., Front]]:
    fronts: list[Front] = []

    def start(**env: str) -> Front:
        system = start_system(WORKERS="1", TRUSTED_PROXIES="1", **env).wait_ready()
        fronts.append(Front(system, tmp_path / "nginx"))
        return fronts[-1]

    yield start
    for front in fronts:
        front.stop()


def published(front: Front, auth: dict[str, str], tmp_path: Path, seed: str) -> int:
    posted = front.http.post(
        f"{front.url}/api/v1/posts",
        headers=auth,
        files={"file": ("a.jpg", fixtures.jpeg(tmp_path, f"{seed}.jpg", seed=seed).read_bytes(), "image/jpeg")},
        timeout=30,
    )
    assert posted.status_code == 202, posted.text
    post = front.system.wait_done(auth, posted.json()["id"])
    assert post["status"] == "completed", post
    return int(post["id"])


def gone_after(front: Front, path: str, post_id: int) -> float:
    """Seconds until an anonymous `path` through the proxy no longer shows `post_id`."""
    started = time.monotonic()
    while time.monotonic() < started + 10:
        answer = front.get(path)
        body = answer.json() if answer.status_code == 200 else {}
        if post_id not in [item["id"] for item in body.get("items", [])] and body.get("id") != post_id:
            break
        time.sleep(0.05)
    return time.monotonic() - started


def test_anonymous_reads_come_from_the_micro_cache_and_leave_it_within_a_second(
    behind_nginx: Callable[..., Front], tmp_path: Path
) -> None:
    front = behind_nginx()
    system = front.system
    alice, mia = system.sign_up("alice"), system.sign_up("mia")
    grant(system.env["DATABASE_URL"], "mia")
    deleted, removed = published(front, alice, tmp_path, "red"), published(front, alice, tmp_path, "blue")

    for path in ("/api/v1/posts", f"/api/v1/posts/{removed}", "/api/v1/tags/trending"):
        statuses = [front.get(path).headers["X-Cache-Status"] for _ in range(3)]
        assert statuses[0] in ("MISS", "EXPIRED") and "HIT" in statuses[1:], (path, statuses)
    signed_in = [front.get("/api/v1/posts", headers=alice).headers["X-Cache-Status"] for _ in range(3)]
    assert signed_in == ["BYPASS"] * 3  # a reader of their own never gets, nor fills, a shared entry
    assert front.get("/api/v1/posts").headers["X-Cache-Status"] != "BYPASS"

    # Deleted by its author, removed by a moderator: gone within max-age (1 s) + 1 s (nginx
    # counts an entry's life in whole seconds), and the round trip of the request that refreshes it.
    assert front.http.delete(f"{front.url}/api/v1/posts/{deleted}", headers=alice).status_code == 204
    assert gone_after(front, "/api/v1/posts", deleted) <= GONE_WITHIN
    front.get(f"/api/v1/posts/{removed}")  # cached again
    answer = front.http.post(f"{front.url}/api/v1/mod/posts/{removed}/remove", headers=mia, json={"reason": "spam"})
    assert answer.status_code == 204, answer.text
    assert gone_after(front, "/api/v1/posts", removed) <= GONE_WITHIN
    assert gone_after(front, f"/api/v1/posts/{removed}", removed) <= GONE_WITHIN
    assert front.get(f"/api/v1/posts/{removed}").status_code == 404


def test_etags_round_trip_through_the_proxy_and_directly(behind_nginx: Callable[..., Front], tmp_path: Path) -> None:
    front = behind_nginx()
    alice = front.system.sign_up("alice")
    published(front, alice, tmp_path, "red")
    for base in (front.url, front.system.url):  # through nginx, and straight to gunicorn
        first = requests.get(f"{base}/api/v1/posts", timeout=10)
        again = requests.get(f"{base}/api/v1/posts", headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
        assert again.status_code == 304 and again.content == b"", base
        head = requests.head(f"{base}/api/v1/posts", timeout=10)
        assert head.status_code == 200 and head.content == b"" and head.headers["ETag"] == first.headers["ETag"]
    later = requests.get(f"{front.url}/api/v1/posts", headers={"If-None-Match": '"stale"'}, timeout=10)
    assert later.status_code == 200 and later.json()["items"]
    for encoding in ("gzip", "br"):
        compressed = requests.get(f"{front.url}/openapi.json", headers={"Accept-Encoding": encoding}, timeout=10)
        assert compressed.headers["Content-Encoding"] == encoding
    # nginx started as root runs its workers as an unprivileged user; the docs page is not framed.
    assert {worker.username() for worker in psutil.Process(front.process.pid).children()} == {"www-data"}
    assert front.get("/metrics").status_code == 404  # not for the public, even from the proxy's own address
    docs = front.get("/docs")
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"] and docs.headers["X-Frame-Options"] == "DENY"


def test_uploads_come_whole_through_the_proxy_and_the_limiter_sees_each_client(
    behind_nginx: Callable[..., Front], tmp_path: Path
) -> None:
    front = behind_nginx(LOGIN_RATE_LIMIT="3/minute", MAX_UPLOAD_BYTES="4000000")
    system = front.system
    auth = system.sign_up("alice")
    raw = system.storage / "raw"

    # nginx takes the whole body before the app sees a byte of it: half sent, nothing reached the app.
    picture = fixtures.noisy_jpeg(tmp_path, width=1200, height=900).read_bytes()
    reached: list[bool] = []

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="n.jpg"\r\n\r\n'
        yield picture[: len(picture) // 2]
        time.sleep(1)
        reached.append(any(raw.glob(".upload-*")))
        yield picture[len(picture) // 2 :]
        yield b"\r\n--b--\r\n"

    headers = {**auth, "Content-Type": "multipart/form-data; boundary=b"}
    accepted = front.http.post(f"{front.url}/api/v1/posts", headers=headers, data=body(), timeout=60)
    assert accepted.status_code == 202 and reached == [False], accepted.text
    post = system.wait_done(auth, accepted.json()["id"])
    assert post["status"] == "completed"
    media = front.get(post["media"]["url"])  # nginx serves the file from the disk
    assert media.status_code == 200 and media.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "X-Cache-Status" not in media.headers and media.content == system.fetch(post["media"]["url"])

    too_big = front.http.post(
        f"{front.url}/api/v1/posts", headers=auth, files={"file": ("big.jpg", b"\xff" * 6_000_000)}, timeout=60
    )
    assert too_big.status_code == 413 and too_big.headers["Content-Type"] == "application/problem+json"
    assert too_big.json()["status"] == 413

    # Each client's own address reaches the rate limiter, whatever X-Forwarded-For it sends
    # (each attempt names another account: the per-account limit stays out of it).
    def logins(source: str, names: list[str], forged: str | None = None) -> list[int]:
        client = requests.Session()
        client.mount("http://", SourceAddress(source))
        headers = {"X-Forwarded-For": forged} if forged else {}
        url = f"{front.url}/api/v1/auth/login"
        return [client.post(url, json={"login": n, "password": PASSWORD}, headers=headers, timeout=10).status_code for n in names]

    assert logins("127.0.0.2", ["a", "b"]) + logins("127.0.0.2", ["c", "d"], forged="10.1.2.3") == [401, 401, 401, 429]
    assert logins("127.0.0.3", ["e", "f"]) == [401, 401]  # another client: its own budget


class SourceAddress(HTTPAdapter):
    """Connections from one local address (127.0.0.0/8 is all this machine's)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def test_the_proxy_command_prints_a_configuration_nginx_accepts(settings: Settings, tmp_path: Path) -> None:
    env = {"DATABASE_URL": settings.database_url, "STORAGE_DIR": str(settings.storage_dir), "VAR_DIR": str(tmp_path / "var")}
    printed = subprocess.run(
        [sys.executable, "-m", "memedroid", "proxy", "--print", "--listen", "127.0.0.1:9999"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert printed.returncode == 0, printed.stderr
    assert "listen 127.0.0.1:9999;" in printed.stdout and f"alias {settings.storage_dir / 'media'}/;" in printed.stdout
    (tmp_path / "var" / "proxy").mkdir(parents=True)
    config = tmp_path / "nginx.conf"
    config.write_text(printed.stdout)
    proxy = Proxy.from_settings(settings.replace(var_dir=tmp_path / "var"), "127.0.0.1:9999")
    checked = subprocess.run(
        [proxy.command()[0], "-t", "-p", str(proxy.folder), "-c", str(config), "-e", "stderr"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_a_removed_post_leaves_the_micro_cache_although_readers_never_stop(
    behind_nginx: Callable[..., Front], tmp_path: Path
) -> None:
    """Two readers, each one request at a time, through the real nginx: after a moderator's
    removal the post, its thread and `/similar` answer 404 to both within HTTP_MAX_AGE + 1 s.
    While one reader refreshed the expired entry, nginx gave the other the stale 200; the
    refresh's 404 said `no-store` and never replaced it: 1,887 stale 200s in 120 s."""
    front = behind_nginx()
    system = front.system
    alice, mia = system.sign_up("alice"), system.sign_up("mia")
    grant(system.env["DATABASE_URL"], "mia")
    post = published(front, alice, tmp_path, "red")
    paths = [f"/api/v1/posts/{post}", f"/api/v1/posts/{post}/comments", f"/api/v1/posts/{post}/similar"]
    last_ok: dict[str, float] = {}
    stop = threading.Event()

    def reader() -> None:
        http = requests.Session()
        while not stop.is_set():
            for path in paths:
                if http.get(f"{front.url}{path}", timeout=10).status_code == 200:
                    last_ok[path] = time.monotonic()

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        wait_for(lambda: len(last_ok) == len(paths), 10, "every path to be read (and cached)")
        answer = front.http.post(f"{front.url}/api/v1/mod/posts/{post}/remove", headers=mia, json={"reason": "spam"})
        assert answer.status_code == 204, answer.text
        removed = time.monotonic()
        time.sleep(8)
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    late = {path: round(when - removed, 2) for path, when in last_ok.items() if when - removed > GONE_WITHIN}
    assert not late, late


def slow_uploads(url: str, auth: dict[str, str], count: int, seconds: float) -> tuple[list[threading.Thread], list[object]]:
    """`count` uploads that send a byte a second for `seconds`, started now; their answers (a
    status, or how the connection failed) land in the list as they end."""
    answers: list[object] = []

    def send() -> None:
        def body() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n\xff\xd8'
            for _ in range(int(seconds)):
                time.sleep(1)
                yield b"\0"

        try:
            headers = {**auth, "Content-Type": "multipart/form-data; boundary=b"}
            answers.append(requests.post(f"{url}/api/v1/posts", headers=headers, data=body(), timeout=seconds + 30).status_code)
        except requests.RequestException as exc:
            answers.append(type(exc).__name__)

    threads = [threading.Thread(target=send, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, answers


def read_times(url: str, seconds: float) -> list[float]:
    """How long each read of the feed took, read after read, for `seconds`."""
    took = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.monotonic()
        assert requests.get(f"{url}/api/v1/posts", timeout=30).status_code == 200
        took.append(time.monotonic() - started)
    return took


def test_slow_uploads_from_one_account_freeze_nothing_behind_the_proxy(behind_nginx: Callable[..., Front]) -> None:
    """24 uploads sending a byte now and then held every request thread of the app (nginx
    streamed their bodies through): the API froze for as long as their sender liked. nginx now
    takes each body whole before the app sees it."""
    front = behind_nginx(WEB_CONCURRENCY="2", WEB_THREADS="4", HTTP_MAX_AGE="0", READ_RATE_LIMIT="100000/minute")
    auth = front.system.sign_up("slowpoke")
    threads, _answers = slow_uploads(front.url, auth, 24, 12)
    time.sleep(2)
    took = read_times(front.url, 8)
    assert max(took) < 1, sorted(took)[-5:]
    for thread in threads:
        thread.join(timeout=1)
