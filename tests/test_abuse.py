"""What a hostile client (or a member at odds with the moderators) tries through the public
interface, and the precise answer it gets: crafted cursors; deleting a post moderators removed;
learning of posts it may not see through `repost_of`."""

from __future__ import annotations

import base64
import json
import time

import psycopg
import redis
from flask.testing import FlaskClient
from helpers import PASSWORD, assert_problem, bearer, seed, signed_up
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from test_cli import memedroid
from test_moderation import grant, moderator

from memedroid import metrics
from memedroid.repositories.queries import queries
from memedroid.services.passwords import hash_password
from memedroid.settings import Settings

LISTINGS = ("", "&tag=cats", "&author=alice")


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_crafted_cursors_are_400_on_every_feed(client: FlaskClient, settings: Settings) -> None:
    """Values Python reads and PostgreSQL does not (a week date, an offset past ±15:59, a comma
    for the fraction) and numbers no float holds (a rank of 10^400) used to be 500s with
    tracebacks."""
    seed(settings.database_url, 3, tags=("cats",))
    crafted = {
        "new": [
            ["2024-W01-1", 5],
            ["2024-01-01T00:00:00+23:59", 5],
            ["2024-01-01T00:00:00,5+00:00", 5],
            ["2024-01-01", 5],
            [int("9" * 400), 5],
        ],
        "hot": [["hot", 1, int("1" + "0" * 400), 5], ["hot", 1, 1e308, 5], ["hot", 1, -1, 5], ["hot", 2**70, 0.5, 5]],
        "top": [["top", int("9" * 30), 5], ["top", 1, 2**64]],
    }
    for listing in LISTINGS:
        for sort, cursors in crafted.items():
            for values in cursors:
                response = client.get(f"/api/v1/posts?sort={sort}&cursor={_cursor(values)}{listing}")
                body = assert_problem(response, 400)
                assert body["errors"] == [{"field": "cursor", "message": "is not a cursor this API returned for this listing"}]
    walked = client.get("/api/v1/posts?sort=new&limit=1").get_json()["next_cursor"]  # one the API did issue
    assert client.get(f"/api/v1/posts?sort=new&limit=1&cursor={walked}").status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4),
    max_leaves=8,
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(json_values, max_size=5), sort=st.sampled_from(["new", "hot", "top"]), listing=st.sampled_from(LISTINGS))
def test_no_cursor_is_a_500(client: FlaskClient, values: list[object], sort: str, listing: str) -> None:
    response = client.get(f"/api/v1/posts?sort={sort}&cursor={_cursor(values)}{listing}")
    assert response.status_code in (200, 400, 404), response.get_data(as_text=True)


def _post_of(database_url: str, author: str, media_of: int) -> int:
    """A completed post by `author` showing the media of post `media_of` (a repost of it, at distance 0)."""
    with psycopg.connect(database_url) as conn:
        return int(
            conn.execute(
                "INSERT INTO posts (author_id, media_id, caption) SELECT u.id, p.media_id, 'again' FROM users u, posts p "
                "WHERE u.username = %s AND p.id = %s RETURNING id",
                (author, media_of),
            ).fetchone()[0]
        )


def test_the_author_cannot_erase_a_moderators_removal(client: FlaskClient, settings: Settings) -> None:
    """After a removal the author's delete only takes the post out of the author's sight: it
    stays, comments and files, for moderators until `purge-removed` takes it."""
    author = bearer(signed_up(client, "bob")["access_token"])
    (post_id,) = seed(settings.database_url, 1, author="bob")
    mod = moderator(client, settings)
    assert client.post(f"/api/v1/posts/{post_id}/comments", headers=mod, json={"body": "evidence"}).status_code == 201
    assert client.post(f"/api/v1/mod/posts/{post_id}/remove", headers=mod, json={"reason": "illegal"}).status_code == 204
    assert client.delete(f"/api/v1/posts/{post_id}", headers=author).status_code == 204
    assert_problem(client.get(f"/api/v1/posts/{post_id}", headers=author), 404)
    assert client.delete(f"/api/v1/posts/{post_id}", headers=author).status_code == 404
    kept = client.get(f"/api/v1/posts/{post_id}", headers=mod)
    assert kept.status_code == 200 and kept.get_json()["removed"]["reason"] == "illegal"
    assert [c["body"] for c in client.get(f"/api/v1/posts/{post_id}/comments", headers=mod).get_json()["items"]] == ["evidence"]
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE posts SET removed_at = now() - interval '31 days' WHERE id = %s", (post_id,))
    assert memedroid(settings, "purge-removed", "--older-than", "30d").returncode == 0
    assert_problem(client.get(f"/api/v1/posts/{post_id}", headers=mod), 404)


def test_repost_of_names_an_original_only_to_readers_who_may_see_it(client: FlaskClient, settings: Settings) -> None:
    """An NSFW original to a reader who did not opt in, or one by an account the reader blocks:
    the repost says it is one, with its distance, and names nothing."""
    (original,) = seed(settings.database_url, 1, author="alice")
    seed(settings.database_url, 0, author="bob")
    repost = _post_of(settings.database_url, "bob", original)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE posts SET nsfw = TRUE WHERE id = %s", (original,))
    named = {"post_id": original, "author": "alice", "distance": 0}
    hidden = {"post_id": None, "author": None, "distance": 0}

    def shown(headers: dict[str, str] | None = None) -> list[object]:
        one = client.get(f"/api/v1/posts/{repost}", headers=headers).get_json()["repost_of"]
        listed = [item["repost_of"] for item in client.get("/api/v1/posts?author=bob", headers=headers).get_json()["items"]]
        return [one, *listed]

    assert shown() == [hidden, hidden]
    opted_in = bearer(signed_up(client, "nina")["access_token"])
    assert client.patch("/api/v1/users/me", headers=opted_in, json={"show_nsfw": True}).status_code == 200
    assert shown(opted_in) == [named, named]
    assert client.put("/api/v1/users/alice/block", headers=opted_in).status_code == 204
    assert shown(opted_in) == [hidden, hidden]
    assert shown(moderator(client, settings)) == [named, hidden]  # a listing shows the audience's page


def test_a_comment_is_seen_only_where_its_post_is(client: FlaskClient, settings: Settings) -> None:
    """A removed post's thread, its comments by id, their replies, likes and reports answered as
    if nothing happened, cached as public; so did other people's comments under the posts a
    `hide_content` ban hides."""
    bob = bearer(signed_up(client, "bob")["access_token"])
    (post_id,) = seed(settings.database_url, 1, author="bob")
    eve = bearer(signed_up(client, "eve")["access_token"])
    said = client.post(f"/api/v1/posts/{post_id}/comments", headers=eve, json={"body": "first"}).get_json()["id"]
    reply = client.post(f"/api/v1/posts/{post_id}/comments", headers=eve, json={"body": "re", "parent_id": said}).get_json()["id"]
    reads = [f"/api/v1/posts/{post_id}/comments", f"/api/v1/comments/{said}", f"/api/v1/comments/{said}/replies"]
    assert [client.get(url).status_code for url in reads] == [200, 200, 200]  # and the thread page is cached
    mod = moderator(client, settings)
    assert client.post(f"/api/v1/mod/posts/{post_id}/remove", headers=mod, json={"reason": "gore"}).status_code == 204

    for url in reads:
        assert_problem(client.get(url), 404)
        assert_problem(client.get(url, headers=eve), 404)
    assert_problem(client.put(f"/api/v1/comments/{reply}/like", headers=eve), 404)
    assert_problem(client.post(f"/api/v1/comments/{said}/reports", headers=eve, json={"reason": "spam"}), 404)
    assert_problem(client.post(f"/api/v1/posts/{post_id}/comments", headers=eve, json={"body": "still?"}), 404)
    for insider in (bob, mod):  # the author and moderators still read the discussion, privately
        thread = client.get(reads[0], headers=insider)
        assert thread.status_code == 200 and [c["id"] for c in thread.get_json()["items"]] == [said]
        assert thread.headers["Cache-Control"].startswith("private")
    assert_problem(client.get(reads[0]), 404)  # what the insiders read was not kept for the public

    assert client.post(f"/api/v1/mod/posts/{post_id}/restore", headers=mod, json={"reason": "appeal"}).status_code == 204
    assert [client.get(url).status_code for url in reads] == [200, 200, 200]
    ban = {"reason": "spam ring", "hide_content": True}
    assert client.post("/api/v1/mod/users/bob/ban", headers=mod, json=ban).status_code == 204
    for url in reads:  # eve's comments, under the post bob's ban hides
        assert_problem(client.get(url), 404)


def test_likes_are_limited_per_account_and_a_like_storm_empties_the_top_pages_once_a_second(
    make_client, settings: Settings
) -> None:
    """Toggling likes five times a second emptied every cached `top` page site-wide at each one."""
    (post_id,) = seed(settings.database_url, 1)
    client = make_client(like_rate_limit="20/minute")
    fans = [bearer(signed_up(client, f"fan{n}")["access_token"]) for n in range(3)]
    said = client.post(f"/api/v1/posts/{post_id}/comments", headers=fans[0], json={"body": "hi"}).get_json()["id"]
    server = redis.Redis.from_url(settings.redis_url)
    versions = set()
    started = time.monotonic()
    for n in range(20):  # posts and comments, liked and unliked: one limit
        url = f"/api/v1/posts/{post_id}/like" if n % 2 else f"/api/v1/comments/{said}/like"
        answer = client.put(url, headers=fans[0]) if n % 4 < 2 else client.delete(url, headers=fans[0])
        assert answer.status_code == 204, (n, answer.get_data(as_text=True))
        versions.add(server.get("memedroid:likes:version"))
    elapsed = time.monotonic() - started
    assert_problem(client.put(f"/api/v1/posts/{post_id}/like", headers=fans[0]), 429)
    assert_problem(client.delete(f"/api/v1/comments/{said}/like", headers=fans[0]), 429)
    assert client.put(f"/api/v1/posts/{post_id}/like", headers=fans[1]).status_code == 204  # another account's own
    assert len(versions) <= int(elapsed) + 2, (versions, elapsed)  # the top pages went once a second at most


def test_common_passwords_and_names_that_speak_for_the_service_are_refused(client: FlaskClient, settings: Settings) -> None:
    def register(username: str, password: str = PASSWORD) -> object:
        body = {"username": username, "email": f"{username.lower()}@example.com", "password": password}
        return client.post("/api/v1/auth/register", json=body)

    for password in ("password1", "Qwertyuiop", "iloveyou2", "my memedroid pw"):
        answer = register("dora", password)
        assert assert_problem(answer, 400)["errors"][0]["field"] == "password", password
    for name in ("admin", "ADMIN", "Adm1n", "m0derator", "Moderat0r", "rnemedroid", "the_memedroid_team", "SUPPORT", "r00t"):
        answer = register(name)
        assert assert_problem(answer, 400)["errors"] == [
            {"field": "username", "message": "is reserved: it would speak for the service"}
        ], name
    for name in ("badminton", "modest", "dora"):
        assert register(name).status_code == 201, name
    # An account made before the rule (or by an operator) with such a password still signs in.
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE username = 'dora'", (hash_password("password1", 4),))
    assert client.post("/api/v1/auth/login", json={"login": "dora", "password": "password1"}).status_code == 200
    assert (
        memedroid(settings, "create-user", "admin", "admin@example.com", "--password-stdin", stdin=PASSWORD + "\n").returncode
        == 0
    )


def test_the_web_sessions_cookies_live_as_long_as_the_session(client: FlaskClient, settings: Settings) -> None:
    signed_up(client, "erin")
    answer = client.post("/api/v1/auth/web/login", json={"login": "erin", "password": PASSWORD})
    cookies = {header.split("=", 1)[0]: header for header in answer.headers.getlist("Set-Cookie")}
    for name in ("refresh_token_cookie", "csrf_refresh_token"):
        assert f"Max-Age={settings.refresh_token_seconds}" in cookies[name], cookies[name]  # not a year


def test_metrics_are_for_the_monitoring_addresses_alone_and_clients_mint_no_series(make_client, settings: Settings) -> None:
    """/metrics was public through the shipped nginx, 200-430 KB a scrape, exempt from limits."""
    client = make_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert_problem(client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}), 404)
    watched = make_client(metrics_allow="10.20.0.0/16")
    assert watched.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.3.4"}).status_code == 200
    assert_problem(watched.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}), 404)
    before = len(metrics._request_series)
    for n in range(50):  # made-up methods and paths: one series for them all
        client.open(f"/nowhere/{n}", method=f"BREW{n}")
    assert len(metrics._request_series) - before <= 2


def test_autocomplete_costs_the_same_however_many_tags_no_listed_post_carries(client: FlaskClient, settings: Settings) -> None:
    """Deleting a post left its tags, and autocomplete walked every tag of the prefix until it
    found `limit` with listed posts: 0.7 s a request at 200,000 dead tags."""
    live = seed(settings.database_url, 2, tags=("cat_live",))
    removed = seed(settings.database_url, 1, tags=("cat_removed",))
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("INSERT INTO tags (name) SELECT 'cat_' || lpad(n::text, 6, '0') FROM generate_series(1, 20000) n")
        conn.execute("UPDATE posts SET removed_at = now(), removed_reason = 'x' WHERE id = %s", (removed[0],))
        conn.execute("DELETE FROM posts WHERE id = %s", (live[1],))
        conn.execute("ANALYZE tags")
    assert client.get("/api/v1/tags?prefix=cat&limit=5").get_json()["items"] == [{"name": "cat_live", "post_count": 1}]
    with psycopg.connect(settings.database_url) as conn:
        plan = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + queries.tags.list_tags_by_prefix.sql, {"pattern": "cat%", "max_count": 5}
        ).fetchone()[0][0]
    read = json.dumps(plan)
    assert "tags_listed_name_idx" in read and '"Actual Rows": 1' in read, read  # one range of live tags, not 20,000 dead


def test_the_report_queue_shows_a_target_s_latest_notes_and_pages_the_rest(client: FlaskClient, settings: Settings) -> None:
    """One target with 2,000 reports made a 2 MB queue page."""
    (post_id,) = seed(settings.database_url, 1)
    mod = moderator(client, settings)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(
            "WITH u AS (INSERT INTO users (username, email, password_hash) "
            "SELECT 'reporter' || n, 'reporter' || n || '@example.com', 'x' FROM generate_series(1, 300) n RETURNING id) "
            "INSERT INTO reports (reporter_id, target_type, target_id, reason, note) "
            "SELECT id, 'post', %s, 'spam', CASE WHEN id %% 2 = 0 THEN repeat('x', 990) || id ELSE '' END FROM u",
            (post_id,),
        )
    answer = client.get("/api/v1/mod/reports", headers=mod)
    assert len(answer.get_data()) < 20_000, len(answer.get_data())
    (group,) = answer.get_json()["items"]
    assert (group["report_count"], group["note_count"], len(group["notes"])) == (300, 150, 3)
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(
            f"/api/v1/mod/reports/posts/{post_id}/notes?limit=40" + (f"&cursor={cursor}" if cursor else ""), headers=mod
        )
        assert page.status_code == 200, page.get_data(as_text=True)
        seen += [item["note"] for item in page.get_json()["items"]]
        cursor = page.get_json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 150 and seen[:3] == group["notes"]  # newest first, the queue's three first
    assert_problem(
        client.get(f"/api/v1/mod/reports/posts/{post_id}/notes", headers=bearer(signed_up(client, "nosy")["access_token"])), 403
    )


def test_what_only_an_admin_may_do(client: FlaskClient, settings: Settings) -> None:
    """An admin had no power a moderator lacked: a moderator could undo an admin's removal and
    remove an admin's posts. Now only an admin acts on what moderators and admins wrote, undoes
    another moderator's action, and grants roles (out of the public log)."""
    tokens = {name: bearer(signed_up(client, name)["access_token"]) for name in ("ann", "mia", "max", "bob")}
    for name, role in (("ann", "admin"), ("mia", "moderator"), ("max", "moderator")):
        grant(settings, name, role)
    (bobs,) = seed(settings.database_url, 1, author="bob")
    (mias,) = seed(settings.database_url, 1, author="mia")
    (anns,) = seed(settings.database_url, 1, author="ann")

    def act(who: str, action: str, target: str = f"posts/{bobs}") -> int:
        return client.post(f"/api/v1/mod/{target}/{action}", headers=tokens[who], json={"reason": "r"}).status_code

    assert act("mia", "remove") == 204
    assert act("max", "restore") == 403  # another moderator's removal
    assert act("mia", "restore") == 204 and act("mia", "remove") == 204 and act("ann", "restore") == 204
    assert act("mia", "remove", f"posts/{anns}") == 403 and act("max", "mark-nsfw", f"posts/{mias}") == 403
    assert act("ann", "remove", f"posts/{mias}") == 204
    assert act("mia", "mark-nsfw") == 204 and act("max", "unmark-nsfw") == 403 and act("ann", "unmark-nsfw") == 204
    assert client.post("/api/v1/mod/users/bob/ban", headers=tokens["mia"], json={"reason": "spam"}).status_code == 204
    assert act("max", "unban", "users/bob") == 403 and act("ann", "unban", "users/bob") == 204

    role = lambda who, user, value: client.put(f"/api/v1/mod/users/{user}/role", headers=tokens[who], json={"role": value})  # noqa: E731
    assert_problem(role("mia", "bob", "moderator"), 403)
    granted = role("ann", "bob", "moderator")
    assert granted.status_code == 200 and granted.get_json()["role"] == "moderator"
    assert_problem(role("ann", "ann", "user"), 409)
    assert_problem(role("ann", "bob", "king"), 400)
    assert not [e for e in client.get("/api/v1/modlog").get_json()["items"] if e["action"].startswith("grant_")]
    assert [e["moderator"] for e in client.get("/api/v1/mod/log", headers=tokens["ann"]).get_json()["items"][:1]] == ["ann"]
