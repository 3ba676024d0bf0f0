"""The read path: feeds, keyset pagination, likes, views, deletes, cache-aside and media files."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from helpers import (
    EVERYONE,
    assert_problem,
    bearer,
    cache_lookups,
    free_port,
    login,
    metric,
    register,
    seed,
    signed_up,
    wait_for_port,
    walk,
)

from memedroid.api.app import create_app
from memedroid.cache import Cache, LocalCache, Page
from memedroid.settings import Settings


def test_walk_250_posts_each_once_in_order(client: FlaskClient, settings: Settings) -> None:
    ids = seed(settings.database_url, 250)
    assert walk(client) == ids[::-1]


def test_walk_is_stable_while_new_posts_arrive(client: FlaskClient, settings: Settings) -> None:
    ids = seed(settings.database_url, 250)
    assert walk(client, between_pages=lambda: seed(settings.database_url, 3, "bob")) == ids[::-1]


def test_feed_item_shape(client: FlaskClient, settings: Settings) -> None:
    seed(settings.database_url, 1, tags=("cats", "memes"))
    [item] = client.get("/api/v1/posts").get_json()["items"]
    assert set(item) >= {"id", "caption", "created_at", "author", "tags", "media", "like_count", "view_count"}
    assert "liked_by_me" not in item
    assert item["author"]["username"] == "alice" and item["tags"] == ["cats", "memes"]
    assert set(item["media"]) >= {"kind", "url", "thumbnail_url", "width", "height", "duration_s", "mime", "blurhash"}


def test_only_completed_posts_appear(client: FlaskClient, settings: Settings) -> None:
    done = seed(settings.database_url, 3)
    seed(settings.database_url, 2, status="pending")
    seed(settings.database_url, 2, status="failed")
    assert walk(client, limit=2) == done[::-1]


def test_tag_and_author_filters(client: FlaskClient, settings: Settings) -> None:
    cats = seed(settings.database_url, 30, "alice", tags=("cats",))
    dogs = seed(settings.database_url, 25, "bob", tags=("dogs",))
    both = seed(settings.database_url, 5, "carol", tags=("cats", "dogs"))
    assert walk(client, "&tag=cats", limit=7) == (cats + both)[::-1]
    assert walk(client, "&tag=DOGS", limit=7) == (dogs + both)[::-1]
    assert walk(client, "&tag=nobody") == []
    assert walk(client, "&author=Bob", limit=7) == dogs[::-1]
    assert_problem(client.get("/api/v1/posts?author=nobody"), 404)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=ten", "cursor=garbage", "cursor=W10", "cursor=WyIyMDIwIiwgLTFd", "tag=a+b", "page=2"]
)
def test_bad_parameters_are_400(client: FlaskClient, query: str) -> None:
    assert_problem(client.get(f"/api/v1/posts?{query}"), 400)


# "¹" (superscript one) was found by schemathesis: str.isdigit() takes it, int() does not.
@pytest.mark.parametrize(
    "url",
    ["/api/v1/tags?limit=0", "/api/v1/tags?limit=%C2%B9", "/api/v1/tags/trending?limit=51", "/api/v1/tags/trending?limit=%C2%B9"],
)
def test_bad_tag_parameters_are_400(client: FlaskClient, url: str) -> None:
    assert assert_problem(client.get(url), 400)["errors"][0]["field"] == "limit"


def test_one_query_per_page_whatever_its_size(make_client, settings: Settings, statements: Callable[[], int]) -> None:
    seed(settings.database_url, 120, tags=("cats",))
    client = make_client(redis_url="")  # no cache: every page from PostgreSQL
    tokens = signed_up(client, "viewer")
    counts = {}
    for limit in (5, 100):
        for query, auth in (("", {}), ("&tag=cats", {}), ("&author=alice", {}), ("", bearer(tokens["access_token"]))):
            before = statements()
            assert client.get(f"/api/v1/posts?limit={limit}{query}", headers=auth).status_code == 200
            counts[(limit, query, bool(auth))] = statements() - before
    assert counts[(5, "", False)] == 1 and counts[(100, "", False)] == 1
    assert counts[(5, "&tag=cats", False)] == counts[(100, "&tag=cats", False)] == 1
    assert counts[(5, "&author=alice", False)] == counts[(100, "&author=alice", False)] == 1
    # Signed in: the session check and liked_by_me, still independent of the page size.
    assert counts[(5, "", True)] == counts[(100, "", True)] == 3


def test_feed_queries_use_indexes(settings: Settings) -> None:
    seed(settings.database_url, 20_000, tags=("cats",))
    seed(settings.database_url, 500, "bob", tags=("dogs",))
    queries = {
        "global": ("list_feed", {}),
        "tag": ("list_feed_by_tag", {"tag": "dogs"}),
        "author": ("list_feed_by_author", {"author": "bob"}),
    }
    from memedroid.repositories.queries import queries as loaded

    with psycopg.connect(settings.database_url) as conn:
        conn.execute("ANALYZE")
        for name, (query, args) in queries.items():
            sql = getattr(loaded.feed, query).sql
            params = {"before_created_at": "infinity", "before_id": 2**63 - 1, "page_size": 20, **EVERYONE, **args}
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", params))
            assert "Seq Scan on posts" not in plan, (name, plan)
            assert "Index" in plan and "Sort" not in plan.split("SubPlan")[0], (name, plan)


def test_likes_are_idempotent_and_counted(client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    auth = bearer(signed_up(client, "fan")["access_token"])
    for _ in range(2):
        assert client.put(f"/api/v1/posts/{post_id}/like", headers=auth).status_code == 204
    body = client.get(f"/api/v1/posts/{post_id}", headers=auth).get_json()
    assert (body["like_count"], body["liked_by_me"]) == (1, True)
    assert client.get("/api/v1/posts", headers=auth).get_json()["items"][0]["liked_by_me"] is True
    for _ in range(2):
        assert client.delete(f"/api/v1/posts/{post_id}/like", headers=auth).status_code == 204
    body = client.get(f"/api/v1/posts/{post_id}", headers=auth).get_json()
    assert (body["like_count"], body["liked_by_me"]) == (0, False)
    assert_problem(client.put(f"/api/v1/posts/{post_id}/like"), 401)
    assert_problem(client.put("/api/v1/posts/999999/like", headers=auth), 404)
    [pending] = seed(settings.database_url, 1, status="pending")
    assert_problem(client.put(f"/api/v1/posts/{pending}/like", headers=auth), 404)


def test_concurrent_likes_are_all_counted(app: Flask, client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    users = [bearer(signed_up(client, f"fan{n}")["access_token"]) for n in range(20)]
    results: list[int] = []

    def like(auth: dict[str, str]) -> None:
        results.append(app.test_client().put(f"/api/v1/posts/{post_id}/like", headers=auth).status_code)

    threads = [threading.Thread(target=like, args=(auth,)) for auth in users * 2]  # each twice
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [204] * 40
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute(
            "SELECT like_count, (SELECT count(*) FROM likes) FROM posts WHERE id = %s", (post_id,)
        ).fetchone() == (20, 20)
    assert client.get(f"/api/v1/posts/{post_id}").get_json()["like_count"] == 20


def test_a_count_mirrored_late_never_hides_one_counted_after_it(app: Flask, client: FlaskClient, settings: Settings) -> None:
    """Two likes commit in one order and reach Redis in the other: the later count stays shown."""
    from memedroid.repositories import likes

    [post_id] = seed(settings.database_url, 1)
    for n in range(2):
        signed_up(client, f"fan{n}")
    with psycopg.connect(settings.database_url) as conn:
        fans = [row[0] for row in conn.execute("SELECT id FROM users WHERE username LIKE 'fan%' ORDER BY id")]
    services = app.extensions["memedroid"]
    counted = []
    for fan in fans:
        with services.db.transaction() as conn:
            counted.append(likes.set_like(conn, fan, post_id, liked=True))
    assert [c.count for c in counted] == [1, 2] and counted[0].counted_at < counted[1].counted_at
    for late in reversed(counted):
        services.posts.counters.mirror(post_id, "likes", late)
    assert client.get(f"/api/v1/posts/{post_id}").get_json()["like_count"] == 2


def test_views_count_in_redis_and_flush_to_postgresql(app: Flask, client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    views = [client.get(f"/api/v1/posts/{post_id}").get_json()["view_count"] for _ in range(3)]
    assert views == [1, 2, 3]
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT view_count FROM posts WHERE id = %s", (post_id,)).fetchone() == (
            0,
        )  # not on the request path
    from memedroid.pipeline.janitor import Janitor
    from memedroid.storage import LocalStorage

    services = app.extensions["memedroid"]
    janitor = Janitor(settings, services.db, LocalStorage(settings.storage_dir), None, "test/boot")
    assert janitor.tick()["views_flushed"] == 3
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT view_count FROM posts WHERE id = %s", (post_id,)).fetchone() == (3,)
    assert client.get(f"/api/v1/posts/{post_id}").get_json()["view_count"] == 4
    assert janitor.tick()["views_flushed"] == 1


def test_delete_rules(client: FlaskClient, settings: Settings) -> None:
    alice = bearer(signed_up(client, "alice")["access_token"])
    bob = bearer(signed_up(client, "bob")["access_token"])
    [done] = seed(settings.database_url, 1, "alice")
    [pending] = seed(settings.database_url, 1, "alice", status="pending")
    assert_problem(client.delete(f"/api/v1/posts/{done}", headers=bob), 403)
    assert_problem(client.delete(f"/api/v1/posts/{pending}", headers=bob), 404)
    assert_problem(client.delete(f"/api/v1/posts/{done}"), 401)
    assert client.delete(f"/api/v1/posts/{done}", headers=alice).status_code == 204
    assert_problem(client.get(f"/api/v1/posts/{done}"), 404)
    assert_problem(client.delete(f"/api/v1/posts/{done}", headers=alice), 404)
    assert client.delete(f"/api/v1/posts/{pending}", headers=alice).status_code == 204


def test_cache_hit_miss_and_invalidation(app: Flask, client: FlaskClient, settings: Settings) -> None:
    first = seed(settings.database_url, 3)
    cache = Cache.from_settings(settings)  # as the finalizer's, in another process
    hits, misses = cache_lookups()
    assert [i["id"] for i in client.get("/api/v1/posts").get_json()["items"]] == first[::-1]
    assert cache_lookups() == (hits, misses + 1)
    assert [i["id"] for i in client.get("/api/v1/posts").get_json()["items"]] == first[::-1]
    assert cache_lookups() == (hits + 1, misses + 1)
    newer = seed(settings.database_url, 1)
    assert len(client.get("/api/v1/posts").get_json()["items"]) == 3  # served from the cache
    cache.bump_feed_version()  # what the finalizer does when a post completes
    assert [i["id"] for i in client.get("/api/v1/posts").get_json()["items"]] == (first + newer)[::-1]
    assert cache_lookups() == (hits + 2, misses + 2)


def test_local_tier_serves_a_page_for_feed_local_seconds_then_asks_redis(make_client, settings: Settings) -> None:
    first = seed(settings.database_url, 2, "bob")
    client = make_client(feed_local_seconds=0.5)
    elsewhere = Cache.from_settings(settings)  # the finalizer's, in another process

    def local() -> tuple[float, float]:
        name = "memedroid_cache_lookups_total"
        return metric(name, cache="feed_local", result="hit"), metric(name, cache="feed_local", result="miss")

    ids = lambda: [i["id"] for i in client.get("/api/v1/posts").get_json()["items"]]  # noqa: E731
    hits, misses = local()
    redis_hits, redis_misses = cache_lookups()
    assert ids() == first[::-1] and ids() == first[::-1]
    assert local() == (hits + 1, misses + 1) and cache_lookups() == (redis_hits, redis_misses + 1)  # Redis asked once

    newer = seed(settings.database_url, 1, "bob")
    elsewhere.bump_feed_version()  # a post completed
    assert ids() == first[::-1]  # this worker may be FEED_LOCAL_SECONDS behind...
    time.sleep(0.6)
    assert ids() == (first + newer)[::-1]  # ...and no more

    alice = bearer(signed_up(client, "alice")["access_token"])
    assert ids() == (first + newer)[::-1]
    [mine] = seed(settings.database_url, 1, "alice")
    elsewhere.bump_feed_version()
    time.sleep(0.6)
    assert ids()[0] == mine
    assert client.delete(f"/api/v1/posts/{mine}", headers=alice).status_code == 204
    assert mine not in ids()  # the deleting worker drops its copies at once


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A redis-server this test may stop and start again on the same port."""
    port = free_port()
    command = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    state: dict[str, Any] = {"url": f"redis://127.0.0.1:{port}/0"}

    def start() -> None:
        state["process"] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(port)

    def stop() -> None:
        state["process"].kill()
        state["process"].wait()

    state["start"], state["stop"] = start, stop
    start()
    yield state
    stop()


def test_redis_outage_is_invisible_to_clients(own_redis: dict[str, Any], settings: Settings, capfd) -> None:
    from memedroid import logs

    ids = seed(settings.database_url, 30, tags=("cats",))
    app = create_app(settings.replace(redis_url=own_redis["url"]))
    try:
        client = app.test_client()
        urls = ["/api/v1/posts?limit=10", "/api/v1/posts?tag=cats", f"/api/v1/posts/{ids[0]}", "/api/v1/tags?prefix=c"]

        def bodies() -> list[Any]:
            out = []
            for url in urls:
                response = client.get(url)
                assert response.status_code == 200, url
                body = response.get_json()
                if "view_count" in body:
                    body.pop("view_count")
                out.append(body)
            return out

        warm = bodies()
        logs.configure("INFO", role="test")
        own_redis["stop"]()
        assert bodies() == warm and bodies() == warm  # from PostgreSQL, same bodies
        degraded = [line for line in capfd.readouterr().out.splitlines() if "cache_degraded" in line]
        assert len(degraded) == 1  # logged once, not per request
        own_redis["start"]()
        hits, _ = cache_lookups()
        bodies()
        bodies()
        assert cache_lookups()[0] > hits  # back on the cache by itself
    finally:
        app.extensions["memedroid"].close()


def test_media_files_ranges_etags_and_no_traversal(client: FlaskClient, settings: Settings) -> None:
    data = bytes(range(256)) * 40
    name = "ab/cd/" + hashlib.sha256(data).hexdigest() + ".mp4"
    (settings.storage_dir / "media" / "ab" / "cd").mkdir(parents=True)
    (settings.storage_dir / "media" / name).write_bytes(data)
    full = client.get(f"/media/{name}")
    assert full.status_code == 200 and full.data == data
    assert full.headers["Content-Type"] == "video/mp4" and full.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in full.headers["Cache-Control"] and full.headers["ETag"] and full.headers["Last-Modified"]
    part = client.get(f"/media/{name}", headers={"Range": "bytes=1000-1099"})
    assert part.status_code == 206 and part.data == data[1000:1100]
    assert part.headers["Content-Range"] == f"bytes 1000-1099/{len(data)}"
    assert client.get(f"/media/{name}", headers={"If-None-Match": full.headers["ETag"]}).status_code == 304
    for bad in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "ab/cd/missing.jpg"):
        assert client.get(f"/media/{bad}", follow_redirects=True).status_code == 404, bad


def test_tags_autocomplete_trending_and_profiles(client: FlaskClient, settings: Settings) -> None:
    seed(settings.database_url, 3, "alice", tags=("cats", "cat_memes"))
    seed(settings.database_url, 1, "bob", tags=("catalog",))
    seed(settings.database_url, 2, "bob", tags=("cats",), status="pending")
    assert client.get("/api/v1/tags?prefix=cat").get_json()["items"] == [
        {"name": "cat_memes", "post_count": 3}, {"name": "catalog", "post_count": 1}, {"name": "cats", "post_count": 3},
    ]  # fmt: skip
    assert client.get("/api/v1/tags?prefix=cat_").get_json()["items"] == [{"name": "cat_memes", "post_count": 3}]
    trending = client.get("/api/v1/tags/trending").get_json()["items"]
    assert trending == []  # the seeded posts are a month old
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE posts SET created_at = now() - interval '1 hour'")
        conn.execute("UPDATE post_tags SET created_at = now() - interval '1 hour'")
    redis.Redis.from_url(settings.redis_url).flushdb()
    assert client.get("/api/v1/tags/trending").get_json()["items"][:2] == [
        {"name": "cat_memes", "post_count": 3}, {"name": "cats", "post_count": 3},
    ]  # fmt: skip
    register(client, "carol")
    login(client, "carol")
    profile = client.get("/api/v1/users/ALICE").get_json()
    assert (profile["username"], profile["post_count"], profile["like_count"]) == ("alice", 3, 0)
    assert_problem(client.get("/api/v1/tags?prefix=No!"), 400)


def test_autocomplete_shows_only_tags_of_completed_posts(client: FlaskClient, settings: Settings) -> None:
    seed(settings.database_url, 2, tags=("shown",))
    seed(settings.database_url, 1, tags=("shadow_pending",), status="pending")
    seed(settings.database_url, 1, tags=("shadow_failed",), status="failed")
    seed(settings.database_url, 1, tags=("shown",), status="pending")
    assert client.get("/api/v1/tags?prefix=sh").get_json()["items"] == [{"name": "shown", "post_count": 2}]


def test_a_page_behind_a_cursor_is_cached_from_its_second_request(client: FlaskClient, settings: Settings) -> None:
    seed(settings.database_url, 30)
    cursor = client.get("/api/v1/posts?limit=10").get_json()["next_cursor"]
    hits, misses = cache_lookups()
    pages = [client.get(f"/api/v1/posts?limit=10&cursor={cursor}").get_json() for _ in range(3)]
    assert pages[0] == pages[1] == pages[2]
    assert cache_lookups() == (hits + 1, misses + 2)  # asked twice, then kept


def test_cache_writes_stop_at_the_byte_budget(make_client, settings: Settings) -> None:
    seed(settings.database_url, 40)
    client = make_client(cache_bytes=30_000)
    for limit in range(1, 41):  # first pages, each its own entry, together far more than 30 kB
        assert client.get(f"/api/v1/posts?limit={limit}").status_code == 200
    store = redis.Redis.from_url(settings.redis_url)
    cached = sum(store.strlen(key) for key in store.scan_iter("memedroid:feed:new:all:*:v*"))
    assert 10_000 < cached <= 2 * 30_000  # the budget is per minute: the test may span two


def test_the_local_tier_is_bounded_in_bytes_and_admits_one_off_keys_on_their_second_request() -> None:
    local = LocalCache("test_local", seconds=60, max_bytes=1000)
    for n in range(10):
        local.put(f"shared{n}", Page.of(str(n) * 300), shared=True)
    assert [n for n in range(10) if local.get(f"shared{n}")] == [7, 8, 9]  # the newest that fit
    local.put("cursor", Page.of("c" * 10))
    assert local.get("cursor") is None  # asked for once: not kept
    local.put("cursor", Page.of("c" * 10))
    assert local.get("cursor") == Page.of("c" * 10)


def test_a_rule_added_to_visible_posts_holds_in_every_listing(client: FlaskClient, settings: Settings) -> None:
    """What a reader may see is written once (sql/functions/visible_posts.sql): a DBA who adds a
    rule there changes every listing, each order of each feed and a member's comments."""
    shown, secret = seed(settings.database_url, tags=("cats",), hours=(1, 2), likes=(3, 5))
    bob = bearer(signed_up(client, "bob")["access_token"])
    for post in (shown, secret):
        assert client.post(f"/api/v1/posts/{post}/comments", json={"body": "nice"}, headers=bob).status_code == 201
    rule = (Path(__file__).parent.parent / "sql" / "functions" / "visible_posts.sql").read_text()
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(rule.replace("        d.listed\n", "        d.listed AND d.caption IS DISTINCT FROM 'secret'\n"))
        conn.execute("UPDATE posts SET caption = 'secret' WHERE id = %s", (secret,))
    listings = [
        f"/api/v1/posts?sort={sort}{narrowed}"
        for sort in ("new", "hot", "top&window=all")
        for narrowed in ("", "&tag=cats", "&author=alice")
    ]
    for listing in listings:
        assert [item["id"] for item in client.get(listing).get_json()["items"]] == [shown], listing
    comments = client.get("/api/v1/users/bob/comments").get_json()["items"]
    assert [item["post_id"] for item in comments] == [shown]
