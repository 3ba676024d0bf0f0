"""Outage drills against real services: PostgreSQL goes away behind a TCP proxy this test
controls, then comes back; the API answers 503 quickly meanwhile and recovers by itself
within seconds. A session of someone else's holds a lock the API needs; the embedded
PostgreSQL is killed; Redis goes away or refuses writes."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from helpers import assert_problem, bearer, cache_lookups, refusing_writes, seed, signed_up, wait_for
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_feeds import own_redis  # noqa: F401 - the fixture

from memedroid.api.app import create_app
from memedroid.settings import Settings


class Proxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `cut()` drops every connection and refuses new
    ones, as a network partition would; `restore()` lets them through again."""

    def __init__(self, target: dict[str, str]) -> None:
        host, port = target.get("host", "127.0.0.1"), int(target.get("port", 5432))
        self.target = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            server = socket.socket(self.target[0], socket.SOCK_STREAM)
            server.connect(self.target[1])
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up = False
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.open.clear()

    def restore(self) -> None:
        self.up = True


@pytest.fixture
def proxied(settings: Settings) -> Iterator[tuple[Settings, Proxy]]:
    target = conninfo_to_dict(settings.database_url)
    proxy = Proxy(target)  # type: ignore[arg-type]
    url = make_conninfo(settings.database_url, host="127.0.0.1", port=str(proxy.port))
    yield settings.replace(database_url=url, db_timeout=2.0), proxy
    proxy.listener.close()


def test_database_outage_is_503_quickly_and_recovery_needs_no_restart(proxied) -> None:
    settings, proxy = proxied
    app = create_app(settings)
    try:
        client = app.test_client()
        auth = bearer(signed_up(client)["access_token"])
        assert client.get("/readyz").status_code == 200

        proxy.cut()
        for url in ("/readyz", "/api/v1/posts", "/api/v1/users/me"):
            started = time.monotonic()
            response = client.get(url, headers=auth)
            assert_problem(response, 503)
            assert time.monotonic() - started < 5, url
            assert response.headers["Retry-After"]
        assert client.get("/healthz").status_code == 200  # alive, just not ready

        proxy.restore()
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.2)
        assert client.get("/api/v1/users/me", headers=auth).status_code == 200
        assert client.get("/api/v1/posts").status_code == 200
    finally:
        app.extensions["memedroid"].close()


@pytest.mark.slow
def test_an_upload_accepted_before_a_database_outage_still_completes(start_system, database_url: str, tmp_path) -> None:
    import fixtures
    from test_metrics import scrape, value

    proxy = Proxy(conninfo_to_dict(database_url))  # type: ignore[arg-type]
    try:
        url = make_conninfo(database_url, host="127.0.0.1", port=str(proxy.port))
        system = start_system(DATABASE_URL=url, WORKERS="1", DB_TIMEOUT="2").wait_ready()
        auth = system.sign_up()
        accepted = system.upload(auth, fixtures.mp4_h264_aac(tmp_path, seconds=4, size="640x480"))
        assert accepted.status_code == 202
        wait_for(lambda: system.events("job_started"), what="processing to start")

        proxy.cut()
        for path in ("/readyz", "/api/v1/posts", f"/api/v1/posts/{accepted.json()['id']}"):
            started = time.monotonic()
            response = system.http.get(system.url + path, headers=auth, timeout=30)
            assert response.status_code == 503 and time.monotonic() - started < 5, (path, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"
        assert value(scrape(system), "memedroid_dependency_up", dependency="postgres") == 0
        time.sleep(3)  # the worker finishes meanwhile; the finalizer cannot record it yet

        proxy.restore()
        ready = lambda: system.http.get(f"{system.url}/readyz", timeout=30).status_code == 200  # noqa: E731
        wait_for(ready, timeout=15, what="the server to see the database again")
        assert system.wait_done(auth, accepted.json()["id"])["status"] == "completed"
        assert value(scrape(system), "memedroid_dependency_up", dependency="postgres") == 1
        assert system.process.poll() is None and len(system.role("worker")) == 1  # nothing restarted
    finally:
        proxy.listener.close()


def test_redis_killed_and_restarted_under_load_fails_no_read(own_redis, settings: Settings) -> None:  # noqa: F811
    from test_feeds import seed

    ids = seed(settings.database_url, 40, tags=("cats",))
    app = create_app(settings.replace(redis_url=own_redis["url"], read_rate_limit="1000000/minute"))
    statuses: list[int] = []
    stop = threading.Event()

    def reader(n: int) -> None:
        client = app.test_client()
        urls = ["/api/v1/posts", "/api/v1/posts?tag=cats", f"/api/v1/posts/{ids[n]}"]
        while not stop.is_set():
            for url in urls:
                statuses.append(client.get(url).status_code)

    try:
        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        own_redis["stop"]()
        time.sleep(1.5)
        own_redis["start"]()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join()
        assert len(statuses) > 50 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
        hits, _ = cache_lookups()
        app.test_client().get("/api/v1/posts")
        assert cache_lookups()[0] == hits + 1  # back on the cache
    finally:
        app.extensions["memedroid"].close()


def test_unwritable_storage_is_a_clear_503_and_leaves_nothing(client, settings: Settings, tmp_path) -> None:
    import io

    import fixtures

    auth = bearer(signed_up(client)["access_token"])
    raw = settings.storage_dir / "raw"
    raw.rmdir()
    raw.write_text("not a folder any more")  # as root, permissions would not stop us; this does
    data = {"file": (io.BytesIO(fixtures.jpeg(tmp_path).read_bytes()), "a.jpg")}
    response = client.post("/api/v1/posts", headers=auth, data=data, content_type="multipart/form-data")
    assert_problem(response, 503)
    assert "cannot store files" in response.get_json()["detail"]
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM media").fetchone() == (0,)  # no row without its file


@pytest.mark.slow
def test_a_session_holding_a_lock_on_posts_costs_requests_a_quick_503_and_the_probes_say_why(
    start_system, database_url: str
) -> None:
    """A migration's lock on `posts` (a DBA's `LOCK TABLE`, a `CREATE INDEX`): every request
    that needs the table answers 503 + Retry-After within DB_LOCK_TIMEOUT instead of waiting
    for the lock, /healthz answers at once although every request thread waits, /readyz says
    that requests are stuck and on whom, and all is well again once the lock goes."""
    system = start_system(WORKERS="1", WEB_THREADS="4", DB_LOCK_TIMEOUT="2").wait_ready()
    auth = system.sign_up()
    (post_id,) = seed(database_url, 1)
    url = system.url + "/api/v1"
    answers: list[tuple[int, float, str]] = []
    stop = threading.Event()

    def client(n: int) -> None:
        http = requests.Session()
        while not stop.is_set():
            started = time.monotonic()
            if n % 2:
                response = http.put(f"{url}/posts/{post_id}/like", headers=auth, timeout=30)
            else:
                response = http.get(f"{url}/posts?sort=new&limit={n + 1}", timeout=30)
            answers.append((response.status_code, time.monotonic() - started, response.headers.get("Retry-After", "")))

    with psycopg.connect(database_url) as holder:
        holder.execute("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in clients:
            thread.start()
        probes = []
        try:
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:
                started = time.monotonic()
                alive = system.http.get(system.url + "/healthz", timeout=10)
                probes.append(("healthz", alive.status_code, time.monotonic() - started, ""))
                started = time.monotonic()
                ready = system.http.get(system.url + "/readyz", timeout=10)
                probes.append(("readyz", ready.status_code, time.monotonic() - started, ready.json().get("detail", "")))
                time.sleep(0.3)
        finally:
            stop.set()
            for thread in clients:
                thread.join()
        holder_pid = holder.info.backend_pid
    assert answers and {status for status, _s, _r in answers} == {503}, Counter(status for status, _s, _r in answers)
    assert max(seconds for _st, seconds, _r in answers) < 7, sorted(seconds for _st, seconds, _r in answers)[-10:]
    assert all(retry for _st, _s, retry in answers)
    assert all(status == 200 and seconds < 1 for name, status, seconds, _d in probes if name == "healthz"), probes
    readyz = [(status, seconds, detail) for name, status, seconds, detail in probes if name == "readyz"]
    assert all(seconds < 3 for _st, seconds, _d in readyz), readyz
    stuck = [detail for status, _s, detail in readyz if status == 503]
    assert stuck and all("stuck on the database" in detail for detail in stuck), readyz
    assert any(str(holder_pid) in detail for detail in stuck), (holder_pid, stuck)

    wait_for(system.answers, timeout=10, what="/readyz to be ready once the lock is gone")
    assert system.http.put(f"{url}/posts/{post_id}/like", headers=auth).status_code == 204
    assert system.http.get(f"{url}/posts").status_code == 200


def test_service_returns_within_seconds_of_the_database(proxied) -> None:
    """After a 20 s outage the pool does not wait out a doubled backoff (1, 2, 4, 8, 16 s…):
    the first request after the database returns is served within seconds."""
    settings, proxy = proxied
    app = create_app(settings)
    try:
        client = app.test_client()
        auth = bearer(signed_up(client)["access_token"])
        proxy.cut()
        outage_ends = time.monotonic() + 20
        while time.monotonic() < outage_ends:
            assert client.get("/api/v1/users/me", headers=auth).status_code == 503
            time.sleep(0.5)
        proxy.restore()
        back = time.monotonic()
        while client.get("/api/v1/users/me", headers=auth).status_code != 200:
            assert time.monotonic() - back < 5, "the pool did not reconnect within 5 s of the database's return"
            time.sleep(0.1)
    finally:
        app.extensions["memedroid"].close()


def test_connections_the_server_closed_meanwhile_fail_no_request(proxied) -> None:
    """A restart of the database closes every pooled connection; the pool notices before it
    hands one out, so the first requests afterwards are served, not answered 503."""
    settings, proxy = proxied
    app = create_app(settings.replace(db_pool_size=4))
    try:
        auth = bearer(signed_up(app.test_client())["access_token"])
        me = lambda _n: app.test_client().get("/api/v1/users/me", headers=auth).status_code  # noqa: E731
        with ThreadPoolExecutor(4) as pool:  # four connections in the pool
            assert set(pool.map(me, range(16))) == {200}
        proxy.cut()  # every connection closed by the other side
        proxy.restore()
        statuses = [me(n) for n in range(10)]
        assert statuses == [200] * 10, statuses
    finally:
        app.extensions["memedroid"].close()


@pytest.mark.slow
def test_an_embedded_postgresql_that_dies_is_started_again(start_system, tmp_path) -> None:
    """Without DATABASE_URL the supervisor runs PostgreSQL itself, and watches it like a child:
    a postmaster killed with SIGKILL is started again, and the system serves again."""
    import fixtures

    system = start_system(DATABASE_URL="", WORKERS="1").wait_ready(timeout=120)
    auth = system.sign_up()
    postmaster = int(system.postmaster_pid.read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    wait_for(lambda: system.events("embedded_died", service="postgres"), timeout=10, what="the supervisor to notice")
    wait_for(lambda: system.events("embedded_restarted", service="postgres"), timeout=60, what="a restart")
    wait_for(system.answers, timeout=30, what="/readyz to be ready again")
    accepted = system.upload(auth, fixtures.jpeg(tmp_path))
    assert accepted.status_code == 202, accepted.text
    assert system.wait_done(auth, accepted.json()["id"])["status"] == "completed"


@pytest.mark.slow
def test_an_upload_whose_commit_waits_on_a_lock_keeps_its_file_from_the_orphan_sweep(
    start_system, database_url: str, tmp_path
) -> None:
    """An upload stores its raw file, then its row waits 15 s behind a lock on `posts` (a plain
    `CREATE INDEX` takes this one), while a janitor with a 10 s grace sweeps every second. The
    file is older than the grace and no row names it yet, but the upload holds it until it
    commits: every upload answered 202 completes."""
    import fixtures

    system = start_system(
        WORKERS="1",
        DB_LOCK_TIMEOUT="60",
        DB_STATEMENT_TIMEOUT="60",
        ORPHAN_GRACE_SECONDS="10",
        JANITOR_INTERVAL="1",
        UPLOAD_CONCURRENCY="3",
        WEB_THREADS="8",  # three uploads of one account at once, on any one worker
    ).wait_ready()
    auth = system.sign_up()
    files = [fixtures.jpeg(tmp_path, f"slow-{n}.jpg", seed=colour) for n, colour in enumerate(("red", "green", "blue"))]
    with ThreadPoolExecutor(3) as uploads, psycopg.connect(database_url) as holder:
        holder.execute("LOCK TABLE posts IN SHARE MODE")
        answers = [uploads.submit(system.upload, auth, path) for path in files]
        wait_for(lambda: len(system.files("raw")) == 3, timeout=10, what="the three raw files")
        time.sleep(15)  # the files are older than the grace now; janitors swept all along
        assert len(system.files("raw")) == 3
        holder.rollback()
        accepted = [answer.result() for answer in answers]
    assert [response.status_code for response in accepted] == [202] * 3, [r.text for r in accepted]
    for response in accepted:
        assert system.wait_done(auth, response.json()["id"])["status"] == "completed"


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_a_like_written_while_redis_refuses_writes_shows_once_it_takes_them_again(own_redis, settings: Settings, how) -> None:  # noqa: F811
    """PostgreSQL has the like; Redis, out of memory or read-only, refused the mirror of its
    count. The old count must not keep showing, to the liker or anyone, however often the
    post is read (reads used to renew it)."""
    (post_id,) = seed(settings.database_url, 1)
    app = create_app(settings.replace(redis_url=own_redis["url"]))
    try:
        client = app.test_client()
        auth = bearer(signed_up(client, "liker")["access_token"])
        for url in (f"/api/v1/posts/{post_id}", "/api/v1/posts"):  # the counters are mirrored, the page cached
            client.get(url)
        takes_writes = refusing_writes(own_redis["url"], how)
        assert client.put(f"/api/v1/posts/{post_id}/like", headers=auth).status_code == 204
        for _ in range(3):
            client.get(f"/api/v1/posts/{post_id}")
        takes_writes()
        client.get("/api/v1/posts")
        deadline = time.monotonic() + 20  # no more than a cached page's life
        while (shown := client.get(f"/api/v1/posts/{post_id}", headers=auth).get_json())["like_count"] != 1:
            assert time.monotonic() < deadline, shown
            client.get(f"/api/v1/posts/{post_id}")  # anonymous reads go on
            time.sleep(0.5)
        assert shown["liked_by_me"] is True
        assert client.get(f"/api/v1/posts/{post_id}").get_json()["like_count"] == 1
        feed = client.get("/api/v1/posts?sort=new", headers=auth).get_json()["items"]
        assert [item["like_count"] for item in feed if item["id"] == post_id] == [1]
    finally:
        app.extensions["memedroid"].close()


@pytest.mark.slow
def test_a_worker_whose_lease_is_lost_behind_a_row_lock_stops_at_once(start_system, database_url: str, tmp_path) -> None:
    """A session locks a processing job's row past its lease: the worker cannot renew it, so it
    stops (its FFmpeg killed) before the janitor may give the job to another worker, and the
    janitor gives it only once the row is free. At no moment do two workers process the file."""
    import fixtures

    system = start_system(
        WORKERS="2", LEASE_SECONDS="3", HEARTBEAT_SECONDS="0.5", JANITOR_INTERVAL="1", DB_LOCK_TIMEOUT="1"
    ).wait_ready()
    auth = system.sign_up()
    response = system.upload(auth, fixtures.mpeg4_avi(tmp_path, seconds=20, size="1280x720"))  # many seconds of work
    assert response.status_code == 202, response.text
    started = wait_for(lambda: system.events("job_started"), 30, "processing to start")[0]
    worker = system.role(started["role"])[0]
    wait_for(lambda: system.tools("ffmpeg"), 30, "FFmpeg to run")
    most = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            most[0] = max(most[0], len(system.tools("ffmpeg")))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with psycopg.connect(database_url) as holder:
            holder.execute("SELECT id FROM media WHERE id = %s FOR UPDATE", (started["media_id"],))
            wait_for(lambda: system.events("lease_lost", media_id=started["media_id"]), 15, "the worker to give its lease up")
            wait_for(lambda: not [c for c in worker.children() if c.name() == "ffmpeg"], 2, "its FFmpeg to stop")
            time.sleep(3)  # the lease has expired, but the janitor cannot take a locked row
            assert len(system.events("job_started", media_id=started["media_id"])) == 1
        assert system.wait_done(auth, response.json()["id"], timeout=120)["status"] == "completed"
    finally:
        sampling.set()
        sampler.join()
    assert most[0] == 1, most  # one FFmpeg at a time on the one job
    assert len(system.events("job_started", media_id=started["media_id"])) == 2
