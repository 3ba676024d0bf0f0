"""Abuse limits: 429 problem details with Retry-After; fail open for reads and closed for
sign-in when the limiter's Redis is down or refuses writes."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter

import fixtures
import pytest
from flask.testing import FlaskClient
from helpers import PASSWORD, assert_problem, bearer, login, refusing_writes, register, signed_up
from test_feeds import own_redis  # noqa: F401 - the fixture

from memedroid.api.limits import FixedWindow


def login_as(client: FlaskClient, login: str, ip: str, password: str = "wrong password!") -> int:
    response = client.post("/api/v1/auth/login", json={"login": login, "password": password}, environ_base={"REMOTE_ADDR": ip})
    return response.status_code


def test_login_is_limited_per_ip_and_per_account(make_client) -> None:
    client = make_client(login_rate_limit="3/minute", login_name_rate_limit="3/minute")
    statuses = [login_as(client, f"user{n}", "10.0.0.1") for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = client.post("/api/v1/auth/login", json={"login": "x", "password": "y"}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    body = assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) > 0 and body["title"] == "Too Many Requests"
    # Another account from a fresh address still gets in; guessing one account from many does not.
    assert [login_as(client, "victim", f"10.0.1.{n}") for n in range(4)] == [401, 401, 401, 429]
    assert login_as(client, "someone", "10.0.2.1") == 401


def test_every_way_of_signing_in_counts_against_one_limit_and_a_few_guessers_lock_no_owner_out(make_client) -> None:
    """/auth/login and /auth/web/login were limited apart: an attacker had twice the guesses, and
    five wrong passwords from five addresses locked the owner out of one way in but not the
    other. Now both count against the limit per address and the ceiling per account, which
    stands above it."""
    client = make_client(login_rate_limit="3/minute", login_name_rate_limit="8/minute")
    signed_up(client, "owner")  # one sign-in
    ways = ["/api/v1/auth/login", "/api/v1/auth/web/login"]

    def attempt(way: int, name: str, ip: str, password: str = "wrong password!") -> int:
        body = {"login": name, "password": password}
        return client.post(ways[way % 2], json=body, environ_base={"REMOTE_ADDR": ip}).status_code

    assert [attempt(n, f"user{n}", "10.0.9.1") for n in range(4)] == [401, 401, 401, 429]  # one address: 3, both ways
    assert [attempt(n, "owner", f"10.0.10.{n}") for n in range(5)] == [401] * 5  # five guessers, one try each
    assert attempt(0, "owner", "10.0.11.1", PASSWORD) == 200 and attempt(1, "owner", "10.0.11.1", PASSWORD) == 200
    assert [attempt(n, "owner", f"10.0.12.{n}") for n in range(2)] == [429, 429]  # the account's ceiling: 8 in all


def test_an_account_has_one_login_counter_by_username_or_email(make_client) -> None:
    client = make_client(login_rate_limit="4/minute", login_name_rate_limit="4/minute")
    assert register(client, "dora").status_code == 201
    names = ["dora", "DORA@example.com", "Dora", "dora@example.com", "dora"]
    assert [login_as(client, name, f"10.0.3.{n}") for n, name in enumerate(names)] == [401] * 4 + [429]


def test_limits_can_be_turned_off_and_only_refusals_say_retry_after(make_client, tmp_path) -> None:
    off = make_client(rate_limits=False, login_rate_limit="1/minute")
    assert [login_as(off, "nobody", "10.0.4.1") for _ in range(3)] == [401] * 3
    assert "X-RateLimit-Limit" not in off.get("/api/v1/tags").headers
    on = make_client()
    created = on.post("/api/v1/auth/register", json={"username": "eve", "email": "eve@example.com", "password": PASSWORD})
    assert created.status_code == 201 and "X-RateLimit-Limit" in created.headers and "Retry-After" not in created.headers
    auth = bearer(login(on, "eve").get_json()["access_token"])
    data = {"file": (io.BytesIO(fixtures.jpeg(tmp_path).read_bytes()), "a.jpg")}
    accepted = on.post("/api/v1/posts", headers=auth, data=data, content_type="multipart/form-data")
    assert accepted.status_code == 202 and "Retry-After" not in accepted.headers


def test_reads_are_limited_per_client_with_headers(make_client) -> None:
    client = make_client(read_rate_limit="3/hour")  # windows turn on the clock: none turns mid-test
    auth = bearer(signed_up(client, "reader")["access_token"])  # signing up has limits of its own
    first = client.get("/api/v1/tags", headers=auth, environ_base={"REMOTE_ADDR": "10.0.5.1"})
    assert first.status_code == 200
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("3", "2")
    assert int(first.headers["X-RateLimit-Reset"]) > time.time()
    for _ in range(2):  # anonymous: the answer may go to others from a shared cache, without one client's limits
        shared = client.get("/api/v1/posts", environ_base={"REMOTE_ADDR": "10.0.5.1"})
        assert shared.status_code == 200 and "X-RateLimit-Limit" not in shared.headers
    limited = client.get("/api/v1/tags/trending", environ_base={"REMOTE_ADDR": "10.0.5.1"})
    body = assert_problem(limited, 429)
    assert body["title"] == "Too Many Requests" and body["detail"] == "3 per 1 hour"
    assert 0 < int(limited.headers["Retry-After"]) <= 3600 and limited.headers["X-RateLimit-Remaining"] == "0"
    assert client.get("/api/v1/tags", environ_base={"REMOTE_ADDR": "10.0.5.2"}).status_code == 200  # another client
    for probe in ("/healthz", "/readyz", "/openapi.json"):  # never limited, no headers
        response = client.get(probe, environ_base={"REMOTE_ADDR": "10.0.5.1"})
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers, probe


def test_behind_a_trusted_proxy_limits_key_on_the_forwarded_client(make_client) -> None:
    direct = make_client(read_rate_limit="2/hour")
    proxied = make_client(read_rate_limit="2/hour", trusted_proxies=1)

    def read(client: FlaskClient, forwarded_for: str) -> int:
        headers = {"X-Forwarded-For": forwarded_for}
        return client.get("/api/v1/tags", headers=headers, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code

    # Directly reached, a forged header changes nothing: all from the one peer.
    assert [read(direct, f"203.0.113.{n}") for n in range(3)] == [200, 200, 429]
    # Behind one proxy, each client has its own budget (the proxy's own address does not matter).
    assert [read(proxied, "198.51.100.7") for _ in range(3)] == [200, 200, 429]
    assert read(proxied, "198.51.100.8") == 200


def test_uploads_are_limited_per_user(make_client, tmp_path) -> None:
    client = make_client(upload_rate_limit="2/hour")
    alice = bearer(signed_up(client, "alice")["access_token"])
    bob = bearer(signed_up(client, "bob")["access_token"])

    def upload(auth: dict[str, str], seed: str) -> int:
        data = {"file": (io.BytesIO(fixtures.jpeg(tmp_path, f"{seed}.jpg", seed=seed).read_bytes()), "a.jpg")}
        return client.post("/api/v1/posts", headers=auth, data=data, content_type="multipart/form-data").status_code

    assert [upload(alice, s) for s in ("red", "green", "blue")] == [202, 202, 429]
    assert upload(bob, "yellow") == 202


def test_reads_fail_open_and_sign_in_fails_closed_without_redis(own_redis, make_client) -> None:  # noqa: F811
    client = make_client(redis_url=own_redis["url"], login_rate_limit="100/minute", read_rate_limit="100/minute")
    signed_up(client, "carol")
    own_redis["stop"]()
    assert client.get("/api/v1/posts").status_code == 200
    assert client.get("/api/v1/tags?prefix=a").status_code == 200
    refused = client.post("/api/v1/auth/login", json={"login": "carol", "password": PASSWORD})
    assert_problem(refused, 503)
    assert refused.headers["Retry-After"]
    own_redis["start"]()
    assert client.post("/api/v1/auth/login", json={"login": "carol", "password": PASSWORD}).status_code == 200


def test_reads_counted_by_many_threads_at_once_are_counted_exactly(make_client) -> None:
    """gthread serves a worker's requests on several threads: every read is counted once and
    none fails (the `limits` library's memory storage once answered one with a 500)."""
    client = make_client(read_rate_limit="100/hour")
    statuses: Counter[int] = Counter()

    def read() -> None:
        for _ in range(25):
            statuses[client.get("/api/v1/tags", environ_base={"REMOTE_ADDR": "10.0.7.1"}).status_code] += 1

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == {200: 100, 429: 100}


def test_a_window_keeps_a_bounded_number_of_clients_and_turns_with_the_clock() -> None:
    window = FixedWindow(amount=2, seconds=1, max_keys=3)
    time.sleep(1 - time.time() % 1 + 0.01)  # at the start of a window: it will not turn mid-test
    assert [window.hit("a")[0] for _ in range(3)] == [1, 0, -1]
    assert window.hit("b")[0] == window.hit("c")[0] == 1
    assert [window.hit("d")[0] for _ in range(3)] == [1, 1, 1]  # a fourth client goes uncounted
    left, reset = window.hit("a")
    assert left == -2 and reset == int(time.time()) + 1
    time.sleep(reset - time.time() + 0.01)
    assert window.hit("a")[0] == 1 and window.counts == {"a": 1}  # a new window forgets the old


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_sign_in_fails_closed_while_redis_refuses_writes_and_says_so_once(own_redis, make_client, how, caplog) -> None:  # noqa: F811
    client = make_client(redis_url=own_redis["url"], login_rate_limit="5/minute")
    signed_up(client, "dave")
    caplog.set_level("INFO")
    caplog.clear()
    takes_writes = refusing_writes(own_redis["url"], how)
    statuses = [login_as(client, "dave", "10.0.8.1") for _ in range(12)]
    assert statuses == [503] * 12, statuses
    takes_writes()
    assert login_as(client, "dave", "10.0.8.1", password=PASSWORD) == 200
    events = [getattr(record, "event", None) for record in caplog.records]
    assert events.count("limiter_degraded") == 1 and events.count("limiter_recovered") == 1, events
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
