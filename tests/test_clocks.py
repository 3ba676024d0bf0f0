"""Clocks that disagree: a node, or an operator's cron job, whose clock runs ahead of the
database's (tests/clockshift.c preloaded into that one process tree). A node far off refuses to start or
to act and `/readyz` says why; within MAX_CLOCK_SKEW, nodes take each other's tokens; and the
orphan sweep deletes nothing an upload needs, whatever its clock says."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import fixtures
import pytest
import redis
import requests
from helpers import clock_ahead, wait_for
from system import System
from test_cli import memedroid

from memedroid.settings import Settings

pytestmark = pytest.mark.slow


def test_a_node_whose_clock_is_far_off_refuses_to_start(start_system) -> None:
    system = start_system(**clock_ahead(600))
    assert system.process.wait(60) == 1, system.log()
    assert "this node's clock is 600 s ahead of the database's (MAX_CLOCK_SKEW=30)" in system.log()


def test_a_janitor_whose_clock_is_far_off_refuses_to_act(settings: Settings) -> None:
    done = memedroid(settings, "janitor", "--once", **clock_ahead(600))
    assert done.returncode == 1, done
    assert "clock is 600 s ahead of the database's" in done.stderr


def test_nodes_take_each_others_tokens_within_the_skew_they_allow(tmp_path: Path, database_url: str, redis_url: str) -> None:
    """Node b's clock runs 20 s ahead: the tokens it signs are dated in node a's future, and
    node a takes them (each node's clock may be MAX_CLOCK_SKEW off, so tokens get twice that of
    leeway)."""
    redis.Redis.from_url(redis_url).flushdb()
    shared = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "NODE_ROLE": "http"}
    nodes = []
    try:
        for name, clock in (("a", {}), ("b", clock_ahead(20))):
            (tmp_path / name).mkdir()
            nodes.append(System({**shared, **clock, "NODE_NAME": f"node-{name}"}, tmp_path / name))
        a, b = nodes
        wait_for(a.answers, 60, "node a")
        wait_for(b.answers, 60, "node b")
        tokens = b.tokens("bob")
        access = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert a.http.get(f"{a.url}/api/v1/users/me", headers=access).status_code == 200
        refreshed = a.http.post(f"{a.url}/api/v1/auth/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
        assert refreshed.status_code == 200, refreshed.text

    finally:
        for system in nodes:
            if system.process.poll() is None:
                system.kill_everything()


def test_a_clock_that_drifts_off_while_running_shows_on_readyz_and_stops_the_janitor(start_system, tmp_path: Path) -> None:
    shift = tmp_path / "shift"
    shift.write_text("0\n")
    system = start_system(WORKERS="1", JANITOR_INTERVAL="1", **clock_ahead(shift)).wait_ready()
    shift.write_text("300\n")
    wait_for(lambda: "this node's clock is 300 s ahead of the database's" in _not_ready(system), 10, "/readyz to notice")
    wait_for(lambda: system.events("clock_skewed"), timeout=10, what="the janitor to refuse")
    shift.write_text("0\n")
    wait_for(system.answers, timeout=10, what="/readyz to be ready again")


def _not_ready(system: System) -> str:
    response = system.http.get(f"{system.url}/readyz", timeout=5)
    return "" if response.status_code == 200 else str(response.json()["detail"])


def test_a_janitor_whose_clock_runs_far_ahead_deletes_nothing_an_upload_needs(
    start_system, settings: Settings, tmp_path: Path
) -> None:
    """An operator's cron job runs `memedroid janitor --once` on a machine whose clock is ten
    minutes ahead, told to act all the same (MAX_CLOCK_SKEW=3600), with the default grace,
    while uploads stream in (some sent slowly). Partial uploads are aged by the storage's own
    clock, and a raw file is deleted only under its upload's lock: every upload is answered
    202 and completes."""
    system = start_system(WORKERS="2", UPLOAD_CONCURRENCY="3", WEB_THREADS="8").wait_ready()  # one account's three at once
    auth = system.sign_up()
    jpeg = fixtures.jpeg(tmp_path, width=160, height=120).read_bytes()
    answers: list[int] = []
    accepted: list[int] = []
    stop = threading.Event()

    def uploads(slow: bool) -> None:
        http = requests.Session()
        while not stop.is_set():
            mark = f"upload {len(answers)} {slow}".encode()
            data = jpeg[:2] + b"\xff\xfe" + (len(mark) + 2).to_bytes(2, "big") + mark + jpeg[2:]
            body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n' + data + b"\r\n--b--\r\n"

            def trickle(body: bytes = body) -> Iterator[bytes]:
                for start in range(0, len(body), 1024):
                    yield body[start : start + 1024]
                    time.sleep(0.05)

            response = http.post(
                f"{system.url}/api/v1/posts",
                data=trickle() if slow else body,
                headers={**auth, "Content-Type": "multipart/form-data; boundary=b"},
                timeout=60,
            )
            answers.append(response.status_code)
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            stop.wait(0.3)  # a pace the two workers keep up with

    threads = [threading.Thread(target=uploads, args=(slow,)) for slow in (False, True, True)]
    for thread in threads:
        thread.start()
    cron = {"STORAGE_DIR": str(system.storage), "MAX_CLOCK_SKEW": "3600", **clock_ahead(600)}
    runs = []
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            runs.append(memedroid(settings, "janitor", "--once", **cron))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert runs and all(run.returncode == 0 for run in runs), [run.stderr for run in runs if run.returncode]
    assert len(answers) > 30 and set(answers) == {202}, Counter(answers)
    print(f"{len(runs)} janitor runs, {len(answers)} uploads")
    for post_id in accepted:
        assert system.wait_done(auth, post_id)["status"] == "completed", post_id
