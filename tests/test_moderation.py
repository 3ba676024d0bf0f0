"""Moderation: roles, the /mod/ operations' gate, removing and restoring posts everywhere, and
the moderation log."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from flask.testing import FlaskClient
from helpers import assert_problem, bearer, login, seed, signed_up, walk
from test_cli import memedroid
from test_ranked import rerank

from memedroid.db import Database
from memedroid.services.moderation import Moderation
from memedroid.settings import Settings

FEEDS = ("", "&sort=hot", "&sort=top&window=all", "&tag=cats", "&author=bob", "&sort=hot&tag=cats", "&sort=top&author=bob")


def grant(settings: Settings, username: str, role: str) -> None:
    db = Database(settings)
    try:
        Moderation.build(db, settings).grant_role(username, role)
    finally:
        db.close()


def moderator(client: FlaskClient, settings: Settings, username: str = "mia") -> dict[str, str]:
    token = signed_up(client, username)["access_token"]
    grant(settings, username, "moderator")
    return bearer(token)


def test_every_mod_operation_answers_401_without_a_token_and_403_to_a_plain_user(client: FlaskClient, settings: Settings) -> None:
    user = bearer(signed_up(client, "paul")["access_token"])
    operations = [
        (method, re.sub(r"\{[a-z_]+\}", "1", route))
        for route, item in client.get("/openapi.json").get_json()["paths"].items()
        if route.startswith("/api/v1/mod/")
        for method in item
    ]
    assert len(operations) >= 3
    for method, route in operations:
        call = getattr(client, method)
        assert_problem(call(route, json={"reason": "x"}), 401)
        refused = assert_problem(call(route, json={"reason": "x"}, headers=user), 403)["detail"]
        assert refused == ("only admins may do this" if route.endswith("/role") else "only moderators may do this"), route


def test_a_role_granted_on_the_command_line_counts_on_the_next_request_and_is_logged(
    client: FlaskClient, settings: Settings
) -> None:
    headers = bearer(signed_up(client, "mia")["access_token"])
    assert_problem(client.get("/api/v1/mod/log", headers=headers), 403)
    granted = memedroid(settings, "grant-role", "MIA", "moderator")
    assert granted.returncode == 0 and "mia (id" in granted.stdout, granted.stderr
    assert client.get("/api/v1/mod/log", headers=headers).status_code == 200  # the same token
    assert memedroid(settings, "grant-role", "nobody", "admin").returncode == 1
    assert memedroid(settings, "grant-role", "mia", "king").returncode == 2
    memedroid(settings, "grant-role", "mia", "user")
    assert_problem(client.get("/api/v1/mod/log", headers=headers), 403)
    assert client.get("/api/v1/modlog").get_json()["items"] == []  # who has which role is not the public's
    memedroid(settings, "grant-role", "mia", "admin")
    entries = client.get("/api/v1/mod/log", headers=headers).get_json()["items"]
    assert [e["action"] for e in entries] == ["grant_admin", "grant_user", "grant_moderator"]
    assert all(e["moderator"] is None and e["target"]["type"] == "user" for e in entries)  # the command line


def listings(client: FlaskClient, **kw: Any) -> dict[str, list[int]]:
    """Every feed the seeded posts show in, walked to its end (twice: the second walk reads
    cached pages), with the tag autocomplete and bob's profile totals."""
    found: dict[str, list[int]] = {}
    for _ in range(2):
        found = {query: walk(client, query, limit=3, **kw) for query in FEEDS}
    found["tag count"] = [client.get("/api/v1/tags?prefix=cat", **kw).get_json()["items"][0]["post_count"]]
    found["profile"] = [client.get("/api/v1/users/bob", **kw).get_json()["post_count"]]
    return found


def test_a_removed_post_leaves_every_listing_for_everyone_and_a_restore_brings_it_back(
    client: FlaskClient, settings: Settings
) -> None:
    bob = bearer(signed_up(client, "bob")["access_token"])  # seed() keeps the account's password
    ids = seed(settings.database_url, author="bob", tags=("cats",), hours=[1, 2, 3, 4, 5], likes=[5, 4, 3, 2, 1])
    rerank(settings)
    mod = moderator(client, settings)
    reader = bearer(signed_up(client, "rita")["access_token"])
    before = {"anonymous": listings(client), "reader": listings(client, headers=reader)}
    assert before["anonymous"][""] == before["anonymous"]["&sort=top&window=all"] == ids  # newest and most liked first

    victim = ids[2]
    response = client.post(f"/api/v1/mod/posts/{victim}/remove", json={"reason": "spam, twice"}, headers=mod)
    assert response.status_code == 204
    for who, headers in (("anonymous", {}), ("reader", reader)):
        after = listings(client, headers=headers)
        for name, shown in before[who].items():
            expected = [n - 1 for n in shown] if name in ("tag count", "profile") else [i for i in shown if i != victim]
            assert after[name] == expected, (who, name)
    assert_problem(client.get(f"/api/v1/posts/{victim}"), 404)
    assert_problem(client.get(f"/api/v1/posts/{victim}", headers=reader), 404)
    assert_problem(client.put(f"/api/v1/posts/{victim}/like", headers=reader), 404)
    assert_problem(client.post(f"/api/v1/posts/{victim}/comments", json={"body": "hi"}, headers=reader), 404)
    for headers in (bob, mod):  # the author and moderators still see it, marked
        shown = client.get(f"/api/v1/posts/{victim}", headers=headers).get_json()
        assert shown["removed"]["reason"] == "spam, twice" and shown["status"] == "completed"
    assert_problem(client.post(f"/api/v1/mod/posts/{victim}/remove", json={"reason": "again"}, headers=mod), 409)

    assert client.post(f"/api/v1/mod/posts/{victim}/restore", json={"reason": "appeal"}, headers=mod).status_code == 204
    assert {"anonymous": listings(client), "reader": listings(client, headers=reader)} == before
    assert client.get(f"/api/v1/posts/{victim}").get_json()["removed"] is None
    assert_problem(client.post(f"/api/v1/mod/posts/{victim}/restore", json={"reason": "again"}, headers=mod), 409)


def test_remove_and_restore_answer_precisely_and_every_action_is_logged(client: FlaskClient, settings: Settings) -> None:
    [post] = seed(settings.database_url, 1)
    mod = moderator(client, settings)
    assert_problem(client.post("/api/v1/mod/posts/999999/remove", json={"reason": "spam"}, headers=mod), 404)
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 5}, {"reason": "ok", "extra": 1}):
        assert_problem(client.post(f"/api/v1/mod/posts/{post}/remove", json=body, headers=mod), 400)
    client.post(f"/api/v1/mod/posts/{post}/remove", json={"reason": "nsfw"}, headers=mod)
    client.post(f"/api/v1/mod/posts/{post}/restore", json={"reason": "mistake"}, headers=mod)
    log = client.get("/api/v1/mod/log?limit=2", headers=mod).get_json()
    assert [(e["action"], e["target"], e["reason"], e["moderator"]) for e in log["items"]] == [
        ("restore_post", {"type": "post", "id": post}, "mistake", "mia"),
        ("remove_post", {"type": "post", "id": post}, "nsfw", "mia"),
    ]
    rest = client.get(f"/api/v1/mod/log?cursor={log['next_cursor']}", headers=mod).get_json()
    assert [e["action"] for e in rest["items"]] == ["grant_moderator"] and rest["next_cursor"] is None
    public = client.get("/api/v1/modlog").get_json()["items"]
    assert [e["action"] for e in public] == ["restore_post", "remove_post"]  # role grants are not the public's
    assert all("moderator" not in e for e in public)
    assert_problem(client.get("/api/v1/modlog?cursor=junk"), 400)


def comment(client: FlaskClient, headers: dict[str, str], post_id: int, body: str, parent_id: int | None = None) -> int:
    response = client.post(f"/api/v1/posts/{post_id}/comments", json={"body": body, "parent_id": parent_id}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def comment_count(client: FlaskClient, post_id: int) -> int:
    return int(client.get(f"/api/v1/posts/{post_id}").get_json()["comment_count"])


def test_a_removed_comment_keeps_its_place_without_its_words_and_leaves_the_count(
    client: FlaskClient, settings: Settings
) -> None:
    [post] = seed(settings.database_url, 1)
    bob = bearer(signed_up(client, "bob")["access_token"])
    rita = bearer(signed_up(client, "rita")["access_token"])
    mod = moderator(client, settings)
    rude = comment(client, bob, post, "you are all idiots")
    reply = comment(client, rita, post, "rude", parent_id=rude)
    thread = f"/api/v1/posts/{post}/comments"
    assert client.get(thread).get_json()["items"][0]["body"] == "you are all idiots"  # cached now
    assert comment_count(client, post) == 2

    assert client.post(f"/api/v1/mod/comments/{rude}/remove", json={"reason": "harassment"}, headers=mod).status_code == 204
    for headers in ({}, rita):
        [shown] = client.get(thread, headers=headers).get_json()["items"]
        assert (shown["id"], shown["body"], shown["author"]) == (rude, None, None)
        assert shown["removed"]["reason"] == "harassment" and shown["replies"][0]["id"] == reply
        assert client.get(f"/api/v1/comments/{rude}", headers=headers).get_json()["body"] is None
    for headers in (bob, mod):  # its author and moderators still read it
        assert client.get(f"/api/v1/comments/{rude}", headers=headers).get_json()["body"] == "you are all idiots"
    assert comment_count(client, post) == 1
    assert [c["id"] for c in client.get("/api/v1/users/bob/comments").get_json()["items"]] == []
    assert client.get("/api/v1/users/bob").get_json()["comment_count"] == 0
    assert_problem(client.put(f"/api/v1/comments/{rude}/like", headers=rita), 404)
    assert_problem(client.post(thread, json={"body": "hm", "parent_id": rude}, headers=rita), 400)
    assert_problem(client.post(f"/api/v1/mod/comments/{rude}/remove", json={"reason": "again"}, headers=mod), 409)
    assert_problem(client.post("/api/v1/mod/comments/999999/remove", json={"reason": "x"}, headers=mod), 404)

    assert client.post(f"/api/v1/mod/comments/{rude}/restore", json={"reason": "appeal"}, headers=mod).status_code == 204
    assert client.get(thread).get_json()["items"][0]["body"] == "you are all idiots"
    assert comment_count(client, post) == 2
    assert_problem(client.post(f"/api/v1/mod/comments/{rude}/restore", json={"reason": "x"}, headers=mod), 409)
    # Deleted while removed: restoring it counts nothing.
    client.post(f"/api/v1/mod/comments/{reply}/remove", json={"reason": "x"}, headers=mod)
    assert client.delete(f"/api/v1/comments/{reply}", headers=rita).status_code == 204
    client.post(f"/api/v1/mod/comments/{reply}/restore", json={"reason": "x"}, headers=mod)
    assert comment_count(client, post) == 1
    actions = [e["action"] for e in client.get("/api/v1/modlog").get_json()["items"]]
    assert actions[:4] == ["restore_comment", "remove_comment", "restore_comment", "remove_comment"]


def test_a_ban_stops_a_live_token_at_once_and_login_with_the_reason_until_lifted(client: FlaskClient, settings: Settings) -> None:
    tokens = signed_up(client, "bob")
    bob = bearer(tokens["access_token"])
    [post] = seed(settings.database_url, 1, author="bob")
    mod = moderator(client, settings)
    assert client.get("/api/v1/users/me", headers=bob).status_code == 200

    assert client.post("/api/v1/mod/users/BOB/ban", json={"reason": "spam"}, headers=mod).status_code == 204
    for call in (
        lambda: client.get("/api/v1/users/me", headers=bob),
        lambda: client.put(f"/api/v1/posts/{post}/like", headers=bob),
        lambda: client.post(f"/api/v1/posts/{post}/comments", json={"body": "hi"}, headers=bob),
        lambda: client.post(f"/api/v1/posts/{post}/reports", json={"reason": "spam"}, headers=bob),
        lambda: client.post("/api/v1/posts", data={"caption": "x"}, headers=bob),
        lambda: client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])),
        lambda: login(client, "bob"),
    ):
        assert assert_problem(call(), 403)["detail"] == "this account is banned: spam"
    assert walk(client) == [post]  # content kept without hide_content
    assert_problem(client.post("/api/v1/mod/users/bob/ban", json={"reason": "again"}, headers=mod), 409)

    assert client.post("/api/v1/mod/users/bob/unban", json={"reason": "appeal"}, headers=mod).status_code == 204
    assert_problem(client.get("/api/v1/users/me", headers=bob), 401)  # its sessions stay revoked
    assert login(client, "bob").status_code == 200
    assert_problem(client.post("/api/v1/mod/users/bob/unban", json={"reason": "again"}, headers=mod), 409)
    entries = client.get("/api/v1/mod/log?limit=2", headers=mod).get_json()["items"]
    assert [(e["action"], e["reason"]) for e in entries] == [("unban_user", "appeal"), ("ban_user", "spam")]


def test_a_ban_that_hides_content_takes_posts_and_comments_away_until_it_ends(client: FlaskClient, settings: Settings) -> None:
    bob = bearer(signed_up(client, "bob")["access_token"])
    ids = seed(settings.database_url, author="bob", tags=("cats",), hours=[1, 2])
    [other] = seed(settings.database_url, 1, author="carl")
    mod = moderator(client, settings)
    rita = bearer(signed_up(client, "rita")["access_token"])
    said = [comment(client, bob, other, "buy pills"), comment(client, bob, ids[0], "mine")]
    kept = comment(client, rita, other, "hello")
    client.post(f"/api/v1/mod/comments/{kept}/remove", json={"reason": "off topic"}, headers=mod)
    before = walk(client)
    assert set(ids) < set(before) and comment_count(client, other) == 1

    until = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    banned = {"reason": "spam ring", "until": until, "hide_content": True}
    assert client.post("/api/v1/mod/users/bob/ban", json=banned, headers=mod).status_code == 204
    assert walk(client) == walk(client, headers=rita) == [other] and walk(client, "&tag=cats") == []
    assert comment_count(client, other) == 0
    assert client.get(f"/api/v1/comments/{said[0]}").get_json()["body"] is None  # on another's post: it keeps its place
    assert client.get(f"/api/v1/comments/{said[1]}").status_code == 404  # on a post the ban hides: hidden with it
    assert client.get(f"/api/v1/posts/{ids[0]}", headers=mod).get_json()["removed"]["reason"] == "spam ring"
    assert login(client, "bob").status_code == 403 and bob

    time.sleep(2.1)  # the ban ran out: bob may sign in, and the janitor's round lifts it
    assert login(client, "bob").status_code == 200
    db = Database(settings)
    try:
        assert Moderation.build(db, settings).lift_ended_bans() == 1
        assert Moderation.build(db, settings).lift_ended_bans() == 0
    finally:
        db.close()
    assert walk(client) == before and comment_count(client, other) == 1
    assert client.get(f"/api/v1/comments/{kept}").get_json()["body"] is None  # removed on its own: stays so
    assert client.get("/api/v1/modlog").get_json()["items"][0]["reason"] == "the ban ran out"


def test_bans_answer_precisely(client: FlaskClient, settings: Settings) -> None:
    signed_up(client, "bob")
    mod = moderator(client, settings)
    other = moderator(client, settings, "max")
    assert other
    url = "/api/v1/mod/users/bob/ban"
    for body in (
        {},
        {"reason": ""},
        {"reason": "x", "until": "tomorrow"},
        {"reason": "x", "until": "2020-01-01T00:00:00+00:00"},
        {"reason": "x", "until": "2999-01-01T00:00:00"},  # no offset
        {"reason": "x", "hide_content": "yes"},
        {"reason": "x", "forever": True},
    ):
        assert_problem(client.post(url, json=body, headers=mod), 400)
    assert_problem(client.post("/api/v1/mod/users/nobody/ban", json={"reason": "x"}, headers=mod), 404)
    assert_problem(client.post("/api/v1/mod/users/max/ban", json={"reason": "x"}, headers=mod), 409)
    assert_problem(client.post("/api/v1/mod/users/bob/unban", json={"reason": "x"}, headers=mod), 409)


def test_reports_are_grouped_by_target_oldest_first_and_resolved_at_once(client: FlaskClient, settings: Settings) -> None:
    signed_up(client, "bob")
    first, second = seed(settings.database_url, 2, author="bob")
    reporters = [bearer(signed_up(client, name)["access_token"]) for name in ("ann", "ben", "cid")]
    mod = moderator(client, settings)
    said = comment(client, reporters[2], second, "spam spam")

    def report(kind: str, target: int, who: int, reason: str, note: str | None = None) -> Any:
        body = {"reason": reason} if note is None else {"reason": reason, "note": note}
        return client.post(f"/api/v1/{kind}/{target}/reports", json=body, headers=reporters[who])

    made = report("posts", first, 0, "nsfw", "gross")
    assert made.status_code == 201
    assert made.get_json() == {
        "id": made.get_json()["id"],
        "target": {"type": "post", "id": first},
        "reason": "nsfw",
        "note": "gross",
    }
    assert report("posts", first, 1, "spam").status_code == 201
    assert report("comments", said, 0, "spam").status_code == 201
    assert report("posts", second, 1, "copyright").status_code == 201
    assert_problem(report("posts", first, 0, "spam"), 409)  # one open report each
    for bad in ({"reason": "boring"}, {"reason": "spam", "note": "x" * 1001}, {}, {"reason": "spam", "x": 1}):
        assert_problem(client.post(f"/api/v1/posts/{first}/reports", json=bad, headers=reporters[2]), 400)
    assert_problem(report("posts", 999999, 0, "spam"), 404)
    assert_problem(client.post(f"/api/v1/posts/{first}/reports", json={"reason": "spam"}), 401)

    queue = client.get("/api/v1/mod/reports?limit=2", headers=mod).get_json()
    assert [(i["target"], i["report_count"], i["reasons"], i["notes"]) for i in queue["items"]] == [
        ({"type": "post", "id": first}, 2, ["nsfw", "spam"], ["gross"]),
        ({"type": "comment", "id": said}, 1, ["spam"], []),
    ]
    assert queue["items"][0]["content"]["id"] == first and queue["items"][1]["content"]["body"] == "spam spam"
    rest = client.get(f"/api/v1/mod/reports?cursor={queue['next_cursor']}", headers=mod).get_json()
    assert [i["target"]["id"] for i in rest["items"]] == [second] and rest["next_cursor"] is None

    resolve = "/api/v1/mod/reports/{}/{}/resolve"
    assert client.post(resolve.format("posts", first), json={"action": "remove", "note": "nsfw"}, headers=mod).status_code == 204
    assert first not in walk(client)
    assert client.post(resolve.format("comments", said), json={"action": "dismiss"}, headers=mod).status_code == 204
    assert client.get(f"/api/v1/comments/{said}").get_json()["body"] == "spam spam"
    assert report("comments", said, 0, "harassment").status_code == 201  # resolved: it may be reported again
    assert_problem(client.post(resolve.format("posts", first), json={"action": "dismiss"}, headers=mod), 404)
    for bad in ({"action": "burn"}, {}, {"action": "dismiss", "until": "2020-01-01T00:00:00+00:00"}):
        assert_problem(client.post(resolve.format("posts", second), json=bad, headers=mod), 400)
    ban = {"action": "ban_author", "note": "serial pirate", "hide_content": True}
    assert client.post(resolve.format("posts", second), json=ban, headers=mod).status_code == 204
    assert walk(client) == [] and assert_problem(login(client, "bob"), 403)["detail"] == "this account is banned: serial pirate"

    assert [i["target"]["id"] for i in client.get("/api/v1/mod/reports", headers=mod).get_json()["items"]] == [said]
    resolved = client.get("/api/v1/mod/reports?status=resolved", headers=mod).get_json()["items"]
    assert [(i["target"]["id"], i["resolution"]["action"], i["resolution"]["by"]) for i in resolved] == [
        (first, "remove", "mia"),
        (said, "dismiss", "mia"),
        (second, "ban_author", "mia"),
    ]
    assert report("posts", first, 1, "spam").status_code == 404  # removed: nothing to report
    assert report("comments", said, 1, "harassment").status_code == 404  # on a post the ban hides: hidden with it
    actions = [e["action"] for e in client.get("/api/v1/modlog").get_json()["items"]]
    assert actions[:5] == ["ban_user", "resolve_ban_author", "resolve_dismiss", "remove_post", "resolve_remove"]


def test_reporting_is_rate_limited_per_user(make_client, settings: Settings) -> None:
    ids = seed(settings.database_url, 3)
    client = make_client(report_rate_limit="2/hour")
    auth = bearer(signed_up(client, "snitch")["access_token"])
    for post in ids[:2]:
        assert client.post(f"/api/v1/posts/{post}/reports", json={"reason": "spam"}, headers=auth).status_code == 201
    assert_problem(client.post(f"/api/v1/posts/{ids[2]}/reports", json={"reason": "spam"}, headers=auth), 429)


def test_purge_removed_deletes_what_was_removed_long_ago_and_keeps_shared_media(client: FlaskClient, settings: Settings) -> None:
    signed_up(client, "bob")
    old, shared, recent, hidden = seed(settings.database_url, 4, author="bob")
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE posts SET media_id = (SELECT media_id FROM posts WHERE id = %s) WHERE id = %s", (old, shared))
        files = dict(conn.execute("SELECT p.id, m.path FROM posts AS p JOIN media AS m ON m.id = p.media_id").fetchall())

    def where(post: int) -> list[str]:
        return [area for area in ("media", "quarantine") if (settings.storage_dir / area / files[post]).exists()]

    for name in files.values():
        (settings.storage_dir / "media" / name).parent.mkdir(parents=True, exist_ok=True)
        (settings.storage_dir / "media" / name).write_bytes(b"x")
    mod = moderator(client, settings)
    rita = bearer(signed_up(client, "rita")["access_token"])
    said = comment(client, rita, shared, "rude")
    for kind, target in (("posts", old), ("posts", recent), ("comments", said)):
        assert client.post(f"/api/v1/mod/{kind}/{target}/remove", json={"reason": "x"}, headers=mod).status_code == 204
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE posts SET removed_at = now() - interval '31 days' WHERE id = %s", (old,))
        conn.execute("UPDATE comments SET removed_at = now() - interval '31 days' WHERE id = %s", (said,))
        # A ban with an end hides this one: its end must find it.
        conn.execute("UPDATE users SET ban_reason = 'x', banned_until = now() + interval '1 day' WHERE username = 'bob'")
        conn.execute(
            "UPDATE posts SET removed_at = now() - interval '40 days', removed_reason = 'x', removed_by_ban = true WHERE id = %s",
            (hidden,),
        )

    purged = memedroid(settings, "purge-removed", "--older-than", "30d")
    assert purged.returncode == 0, purged.stderr
    assert "purged 1 removed posts (0 media with their files) and 1 comments" in purged.stdout
    assert_problem(client.get(f"/api/v1/posts/{old}", headers=mod), 404)
    for post in (shared, recent, hidden):
        assert client.get(f"/api/v1/posts/{post}", headers=mod).status_code == 200
    assert client.get(f"/api/v1/comments/{said}", headers=mod).get_json()["body"] is None  # erased for good
    assert where(shared) == ["media"] and where(recent) == ["quarantine"]  # `shared` still shows old's media

    client.post(f"/api/v1/mod/posts/{shared}/remove", json={"reason": "x"}, headers=mod)
    purged = memedroid(settings, "purge-removed", "--older-than", "0s")
    assert "purged 2 removed posts (2 media with their files)" in purged.stdout, purged.stdout  # shared's and recent's
    assert [where(post) for post in (shared, recent, hidden)] == [[], [], ["quarantine"]]  # a ban's end may bring it back
    assert memedroid(settings, "purge-removed", "--older-than", "30").returncode == 2
