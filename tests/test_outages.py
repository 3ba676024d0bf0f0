"""Outage drills against real services: PostgreSQL goes away behind a TCP proxy this test
controls, then comes back; the API answers 503 quickly meanwhile and recovers by itself."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from helpers import assert_problem, bearer, cache_lookups, signed_up, wait_for
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
        app.extensions["memedroid"].db.close()


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
        app.extensions["memedroid"].db.close()


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
