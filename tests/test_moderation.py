"""Moderation: roles, the /mod/ operations' gate, removing and restoring posts everywhere, and
the moderation log."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from helpers import assert_problem, bearer, seed, signed_up, walk
from test_cli import memedroid
from test_ranked import rerank

from memedroid.cache import FeedCache
from memedroid.db import Database
from memedroid.services.moderation import Moderation
from memedroid.settings import Settings

FEEDS = ("", "&sort=hot", "&sort=top&window=all", "&tag=cats", "&author=bob", "&sort=hot&tag=cats", "&sort=top&author=bob")


def grant(settings: Settings, username: str, role: str) -> None:
    db = Database(settings)
    try:
        Moderation(db, FeedCache.from_settings(settings)).grant_role(username, role)
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
        assert assert_problem(call(route, json={"reason": "x"}, headers=user), 403)["detail"] == "only moderators may do this"


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
    entries = client.get("/api/v1/modlog").get_json()["items"]
    assert [e["action"] for e in entries] == ["grant_user", "grant_moderator"]
    assert all("moderator" not in e and e["target"]["type"] == "user" for e in entries)


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
    assert [e["action"] for e in public] == ["restore_post", "remove_post", "grant_moderator"]
    assert all("moderator" not in e for e in public)
    assert_problem(client.get("/api/v1/modlog?cursor=junk"), 400)
