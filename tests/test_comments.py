"""Comments: threads under posts, their pages (one statement, depth 3 inline), likes,
deletions that keep replies in place, exact counts under concurrency, and their cache."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import EVERYONE, assert_problem, bearer, seed, signed_up

from memedroid.api.app import create_app
from memedroid.repositories.queries import queries
from memedroid.settings import Settings


def comment(client: FlaskClient, auth: dict[str, str], post_id: int, body: str, parent_id: int | None = None) -> int:
    payload: dict[str, Any] = {"body": body} | ({"parent_id": parent_id} if parent_id else {})
    response = client.post(f"/api/v1/posts/{post_id}/comments", json=payload, headers=auth)
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/comments/{response.get_json()['id']}")
    return int(response.get_json()["id"])


def chain(client: FlaskClient, auth: dict[str, str], post_id: int, depth: int) -> list[int]:
    """A reply to a reply to ... `depth` comments deep; their ids, top-level first."""
    ids: list[int] = []
    for level in range(depth):
        ids.append(comment(client, auth, post_id, f"level {level + 1}", ids[-1] if ids else None))
    return ids


def page(client: FlaskClient, url: str, **kw: Any) -> dict[str, Any]:
    response = client.get(url, **kw)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def test_a_thread_to_depth_5_shows_3_inline_and_the_rest_behind_a_cursor(client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    auth = bearer(signed_up(client, "talker")["access_token"])
    ids = chain(client, auth, post_id, 5)
    [top] = page(client, f"/api/v1/posts/{post_id}/comments")["items"]
    assert (top["id"], top["depth"], top["body"], top["author"]["username"]) == (ids[0], 1, "level 1", "talker")
    second = top["replies"][0]
    third = second["replies"][0]
    assert [second["id"], third["id"], third["replies"]] == [ids[1], ids[2], []]  # the inline cut
    assert (top["replies_cursor"], second["replies_cursor"]) == (None, None)  # all of theirs shown
    assert third["reply_count"] == 1 and third["replies_cursor"]
    deeper = page(client, f"/api/v1/comments/{ids[2]}/replies?cursor={third['replies_cursor']}")["items"]
    assert [deeper[0]["id"], deeper[0]["replies"][0]["id"]] == ids[3:5]
    assert page(client, f"/api/v1/comments/{ids[2]}/replies")["items"] == deeper
    assert page(client, f"/api/v1/comments/{ids[4]}")["depth"] == 5
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT comment_count FROM posts WHERE id = %s", (post_id,)).fetchone()[0] == 5
    assert page(client, "/api/v1/posts")["items"][0]["comment_count"] == 5
    assert page(client, "/api/v1/users/talker")["comment_count"] == 5


def test_more_replies_than_shown_continue_behind_the_cursor_in_order(client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    auth = bearer(signed_up(client, "reader")["access_token"])
    root = comment(client, auth, post_id, "root")
    replies = [comment(client, auth, post_id, f"reply {n}", root) for n in range(7)]
    [item] = page(client, f"/api/v1/posts/{post_id}/comments?sort=new")["items"]
    shown = [reply["id"] for reply in item["replies"]]
    assert shown == replies[::-1][:3] and item["reply_count"] == 7
    rest, cursor = [], item["replies_cursor"]
    while cursor:
        found = page(client, f"/api/v1/comments/{root}/replies?sort=new&limit=2&cursor={cursor}")
        rest += [reply["id"] for reply in found["items"]]
        cursor = found["next_cursor"]
    assert shown + rest == replies[::-1]


def test_top_level_pages_walk_in_either_order(client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    authors = [bearer(signed_up(client, f"user{n}")["access_token"]) for n in range(4)]
    ids = [comment(client, authors[0], post_id, f"comment {n}") for n in range(25)]
    likes = {ids[3]: 3, ids[10]: 2, ids[20]: 2}  # a tie, broken newest first
    for comment_id, count in likes.items():
        for auth in authors[:count]:
            assert client.put(f"/api/v1/comments/{comment_id}/like", headers=auth).status_code == 204

    def walk(sort: str) -> list[int]:
        seen, cursor = [], None
        while True:
            url = f"/api/v1/posts/{post_id}/comments?sort={sort}&limit=4" + (f"&cursor={cursor}" if cursor else "")
            found = page(client, url)
            seen += [item["id"] for item in found["items"]]
            if not (cursor := found["next_cursor"]):
                return seen

    assert walk("new") == ids[::-1]
    assert walk("top") == [ids[3], ids[20], ids[10]] + [i for i in ids[::-1] if i not in likes]
    liked = page(client, f"/api/v1/posts/{post_id}/comments?limit=1", headers=authors[1])["items"][0]
    assert (liked["id"], liked["like_count"], liked["liked_by_me"]) == (ids[3], 3, True)
    assert "liked_by_me" not in page(client, f"/api/v1/posts/{post_id}/comments?limit=1")["items"][0]


def test_a_deleted_comment_keeps_its_replies_and_only_its_author_may_delete(client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    ann, ben = (bearer(signed_up(client, name)["access_token"]) for name in ("ann", "ben"))
    root = comment(client, ann, post_id, "soon gone")
    reply = comment(client, ben, post_id, "still here", root)
    assert_problem(client.delete(f"/api/v1/comments/{root}", headers=ben), 403)
    assert_problem(client.delete(f"/api/v1/comments/{root}"), 401)
    for _ in range(2):  # idempotent
        assert client.delete(f"/api/v1/comments/{root}", headers=ann).status_code == 204
    [item] = page(client, f"/api/v1/posts/{post_id}/comments")["items"]
    assert (item["id"], item["deleted"], item["body"], item["author"]) == (root, True, None, None)
    assert [r["id"] for r in item["replies"]] == [reply] and item["replies"][0]["body"] == "still here"
    assert page(client, "/api/v1/posts")["items"][0]["comment_count"] == 1
    assert_problem(client.post(f"/api/v1/posts/{post_id}/comments", json={"body": "hi", "parent_id": root}, headers=ben), 400)
    assert_problem(client.put(f"/api/v1/comments/{root}/like", headers=ben), 404)
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT body FROM comments WHERE id = %s", (root,)).fetchone()[0] == ""
    assert [c["id"] for c in page(client, "/api/v1/users/ann/comments")["items"]] == []
    assert [c["id"] for c in page(client, "/api/v1/users/ben/comments")["items"]] == [reply]
    assert page(client, "/api/v1/users/ann")["comment_count"] == 0


def test_comment_counts_are_exact_under_50_concurrent_commenters(app: Flask, client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    users = [bearer(signed_up(client, f"fan{n}")["access_token"]) for n in range(50)]
    root = comment(client, users[0], post_id, "root")
    mine: dict[int, list[int]] = {}
    failures: list[Any] = []

    def talk(n: int, auth: dict[str, str]) -> None:
        http = app.test_client()
        made = []
        for k in range(4):
            response = http.post(
                f"/api/v1/posts/{post_id}/comments", json={"body": f"{n}/{k}", "parent_id": root if k % 2 else None}, headers=auth
            )
            if response.status_code != 201:
                failures.append(response.get_json())
                return
            made.append(response.get_json()["id"])
        if n % 2:  # half of them take one back at once
            if http.delete(f"/api/v1/comments/{made[0]}", headers=auth).status_code != 204:
                failures.append(n)
        mine[n] = made

    threads = [threading.Thread(target=talk, args=(n, auth)) for n, auth in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with psycopg.connect(settings.database_url) as conn:
        counted, replies = conn.execute(
            "SELECT p.comment_count, c.reply_count FROM posts p, comments c WHERE p.id = %s AND c.id = %s", (post_id, root)
        ).fetchone()
        live = conn.execute("SELECT count(*) FROM comments WHERE post_id = %s AND deleted_at IS NULL", (post_id,)).fetchone()[0]
    assert counted == live == 1 + 50 * 4 - 25
    assert replies == 50 * 2
    assert page(client, f"/api/v1/posts/{post_id}")["comment_count"] == counted


def test_comments_only_on_visible_posts_and_bodies_are_checked(client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    [pending] = seed(settings.database_url, 1, status="pending")
    [other] = seed(settings.database_url, 1)
    auth = bearer(signed_up(client, "reader")["access_token"])
    elsewhere = comment(client, auth, other, "on another post")
    url = f"/api/v1/posts/{post_id}/comments"
    assert_problem(client.post(f"/api/v1/posts/{pending}/comments", json={"body": "hi"}, headers=auth), 404)
    assert_problem(client.post("/api/v1/posts/999999/comments", json={"body": "hi"}, headers=auth), 404)
    assert_problem(client.get(f"/api/v1/posts/{pending}/comments"), 404)
    assert_problem(client.get("/api/v1/comments/999999"), 404)
    assert_problem(client.get("/api/v1/comments/999999/replies"), 404)
    assert_problem(client.get("/api/v1/users/nobody/comments"), 404)
    assert_problem(client.post(url, json={"body": "hi"}), 401)
    for payload, field in [
        ({}, "body"),
        ({"body": "   "}, "body"),
        ({"body": "x" * 5001}, "body"),
        ({"body": 7}, "body"),
        ({"body": "a\x00b"}, "body"),
        ({"body": "\ud800"}, "body"),
        ({"body": "hi", "parent_id": "1"}, "parent_id"),
        ({"body": "hi", "parent_id": True}, "parent_id"),
        ({"body": "hi", "parent_id": elsewhere}, "parent_id"),
        ({"body": "hi", "parent_id": 999999}, "parent_id"),
        ({"body": "hi", "html": "<b>"}, "html"),
    ]:
        problem = assert_problem(client.post(url, json=payload, headers=auth), 400)
        assert [error["field"] for error in problem["errors"]] == [field], payload
    assert_problem(client.post(url, data="body=hi", headers=auth), 415)
    made = client.post(url, json={"body": "  <script>alert(1)</script>  "}, headers=auth).get_json()
    assert made["body"] == "<script>alert(1)</script>"  # stored and returned as text; clients never render HTML
    assert comment(client, auth, post_id, "x" * 5000)
    for query in ("sort=hot", "limit=0", "limit=101", "cursor=garbage", "cursor=WyJuZXciLDFd&sort=top", "page=2"):
        assert_problem(client.get(f"{url}?{query}"), 400)


def test_commenting_is_rate_limited_per_user(make_client, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    client = make_client(comment_rate_limit="3/hour")
    auth, other = (bearer(signed_up(client, name)["access_token"]) for name in ("chatty", "quiet"))
    for n in range(3):
        comment(client, auth, post_id, f"comment {n}")
    assert_problem(client.post(f"/api/v1/posts/{post_id}/comments", json={"body": "one more"}, headers=auth), 429)
    comment(client, other, post_id, "my first")


def test_cached_pages_follow_comments_and_likes(client: FlaskClient, settings: Settings) -> None:
    [post_id] = seed(settings.database_url, 1)
    auth = bearer(signed_up(client, "reader")["access_token"])
    url = f"/api/v1/posts/{post_id}/comments"
    assert page(client, url)["items"] == [] and page(client, url)["items"] == []  # cached now
    first = comment(client, auth, post_id, "first")
    assert [item["id"] for item in page(client, url)["items"]] == [first]
    assert page(client, url)["items"][0]["like_count"] == 0
    assert client.put(f"/api/v1/comments/{first}/like", headers=auth).status_code == 204
    assert page(client, url)["items"][0]["like_count"] == 1
    assert client.delete(f"/api/v1/comments/{first}", headers=auth).status_code == 204
    assert page(client, url)["items"][0]["deleted"] is True
    # A feed page shows the comment count of when it was cached, at most PAGE_TTL; a reader
    # signed in gets the live counters (the hot ones in Redis).
    feed = page(client, "/api/v1/posts")["items"][0]
    assert comment(client, auth, post_id, "second")
    assert page(client, "/api/v1/posts", headers=auth)["items"][0]["comment_count"] == feed["comment_count"] + 1


def test_a_thread_page_is_one_statement_and_uses_indexes(settings: Settings, statements: Callable[[], int]) -> None:
    [post_id] = seed(settings.database_url, 1)
    with psycopg.connect(settings.database_url) as conn:
        user_id = conn.execute("SELECT author_id FROM posts").fetchone()[0]
        # 600 top-level comments with 3 replies each, each with 3 replies of its own.
        conn.execute(
            """
            WITH top AS (
                INSERT INTO comments (post_id, author_id, depth, body, reply_count)
                SELECT %(post)s, %(user)s, 1, 'top ' || n, 3 FROM generate_series(1, 600) n RETURNING id
            ), second AS (
                INSERT INTO comments (post_id, parent_id, author_id, depth, body, reply_count)
                SELECT %(post)s, top.id, %(user)s, 2, 'second', 3 FROM top, generate_series(1, 3) RETURNING id
            )
            INSERT INTO comments (post_id, parent_id, author_id, depth, body)
            SELECT %(post)s, second.id, %(user)s, 3, 'third' FROM second, generate_series(1, 3)
            """,
            {"post": post_id, "user": user_id},
        )
        conn.execute("ANALYZE")
        for name, params in (
            ("list_thread_new", {"before_id": 2**63 - 1}),
            ("list_thread_top", {"before_likes": 2**31 - 1, "before_id": 2**63 - 1}),
        ):
            args = {
                "post_id": post_id,
                "parent_id": 0,
                "page_size": 20,
                "replies": 3,
                "viewer_id": 0,
                "unlisted_too": False,
                **params,
            }
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {getattr(queries.comments, name).sql}", args))
            assert "Seq Scan on comments" not in plan and "comments_thread_" in plan, (name, plan)
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                f"EXPLAIN {queries.comments.list_user_comments.sql}",
                {"author": "alice", "before_id": 2**63 - 1, "page_size": 20, **EVERYONE},
            )
        )
        assert "Seq Scan on comments" not in plan, plan
    client = create_app(settings.replace(redis_url="")).test_client()
    for sort in ("top", "new"):
        counts = set()
        for limit in (5, 100):
            before = statements()
            found = page(client, f"/api/v1/posts/{post_id}/comments?sort={sort}&limit={limit}")
            counts.add(statements() - before)
            assert len(found["items"]) == limit and all(len(item["replies"]) == 3 for item in found["items"])
        assert counts == {1}, sort


@pytest.mark.parametrize("path", ["/api/v1/posts/1/comments", "/api/v1/comments/1/replies"])
def test_thread_parameters_are_checked(client: FlaskClient, path: str) -> None:
    assert_problem(client.get(f"{path}?sort=best"), 400)
