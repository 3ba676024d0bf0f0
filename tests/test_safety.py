"""NSFW posts and blocks: who sees what in every listing, cached or not."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fixtures
import psycopg
import pytest
from flask.testing import FlaskClient
from helpers import assert_problem, bearer, seed, signed_up, walk
from test_cli import memedroid
from test_moderation import comment, moderator
from test_ranked import rerank
from test_reposts import published

from memedroid.settings import Settings

# Every order, window and scope a reader can ask for.
FEEDS = tuple(
    f"{sort}{scope}"
    for sort in ("", "&sort=hot", *(f"&sort=top&window={w}" for w in ("day", "week", "month", "year", "all")))
    for scope in ("", "&tag=cats", "&tag=dogs", "&author=bob", "&author=carl")
)


@pytest.fixture
def client(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    """A client that may walk every listing several times a minute."""
    return make_client(read_rate_limit="100000/minute")


def every_listing(client: FlaskClient, **kw: Any) -> dict[str, list[int]]:
    """The ids of every feed walked to its end, twice (the second walk reads cached pages)."""
    first = {query: walk(client, query, limit=4, **kw) for query in FEEDS}
    assert {query: walk(client, query, limit=4, **kw) for query in FEEDS} == first
    return first


def mark_nsfw(settings: Settings, post_ids: list[int]) -> None:
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE posts SET nsfw = true WHERE id = ANY(%s)", (post_ids,))


def test_an_nsfw_post_never_reaches_a_reader_who_did_not_opt_in(client: FlaskClient, settings: Settings) -> None:
    hours = [i * 5 for i in range(12)]  # from now to 55 hours ago: every window holds some
    bob = seed(settings.database_url, author="bob", tags=("cats",), hours=hours, likes=range(12))
    carl = seed(settings.database_url, author="carl", tags=("dogs",), hours=[h + 1 for h in hours], likes=range(12, 0, -1))
    nsfw = bob[::3] + carl[1::4]
    mark_nsfw(settings, nsfw)
    rerank(settings)
    rita = bearer(signed_up(client, "rita")["access_token"])
    fan = bearer(signed_up(client, "fan")["access_token"])

    anonymous = every_listing(client)  # cached for anonymous readers first: the opted-in must not get these pages
    assert client.patch("/api/v1/users/me", json={"show_nsfw": True}, headers=fan).get_json()["show_nsfw"] is True
    opted_in = every_listing(client, headers=fan)
    assert every_listing(client, headers=rita) == anonymous
    assert every_listing(client) == anonymous
    for query, shown in anonymous.items():
        assert not set(shown) & set(nsfw), query
        assert [i for i in opted_in[query] if i not in nsfw] == shown, query
    assert set(opted_in[""]) == set(bob + carl) and set(anonymous[""]) == set(bob + carl) - set(nsfw)
    assert client.get(f"/api/v1/posts/{nsfw[0]}").get_json()["nsfw"] is True  # the post itself: a client blurs it
    with psycopg.connect(settings.database_url) as conn:  # a safe post showing the NSFW one's media
        conn.execute("UPDATE posts SET media_id = (SELECT media_id FROM posts WHERE id = %s) WHERE id = %s", (nsfw[0], bob[1]))
    similar = f"/api/v1/posts/{bob[1]}/similar"
    assert client.get(similar).get_json()["items"] == client.get(similar, headers=rita).get_json()["items"] == []
    assert [p["id"] for p in client.get(similar, headers=fan).get_json()["items"]] == [nsfw[0]]

    # A comment under an NSFW post is not listed for those who did not opt in.
    said = [comment(client, rita, nsfw[0], "hot"), comment(client, rita, bob[1], "cool")]
    for headers, expected in (({}, said[1:]), (rita, said[1:]), (fan, said[::-1])):
        listed = client.get("/api/v1/users/rita/comments", headers=headers).get_json()["items"]
        assert [c["id"] for c in listed] == expected

    assert client.patch("/api/v1/users/me", json={"show_nsfw": False}, headers=fan).status_code == 200
    assert every_listing(client, headers=fan) == anonymous  # counts from the next request
    for body in ({}, {"show_nsfw": "yes"}, {"show_nsfw": True, "theme": "dark"}):
        assert_problem(client.patch("/api/v1/users/me", json=body, headers=fan), 400)
    assert_problem(client.patch("/api/v1/users/me", json={"show_nsfw": True}), 401)


def test_authors_and_moderators_mark_posts_nsfw(client: FlaskClient, settings: Settings, tmp_path: Path) -> None:
    author = bearer(signed_up(client, "bob")["access_token"])
    image = fixtures.jpeg(tmp_path).read_bytes()
    for flag, expected in (("true", True), ("0", False)):
        body = {"file": (io.BytesIO(image), "meme.jpg", "image/jpeg"), "nsfw": flag}
        made = client.post("/api/v1/posts", headers=author, data=body, content_type="multipart/form-data")
        assert made.status_code == 202 and made.get_json()["nsfw"] is expected
    body = {"file": (io.BytesIO(image), "meme.jpg", "image/jpeg"), "nsfw": "maybe"}
    bad = client.post("/api/v1/posts", headers=author, data=body, content_type="multipart/form-data")
    assert assert_problem(bad, 400)["errors"] == [{"field": "nsfw", "message": "send at most one: true or false"}]

    [post] = seed(settings.database_url, 1, author="bob")
    mod = moderator(client, settings)
    assert walk(client) == [post]  # cached
    assert client.post(f"/api/v1/mod/posts/{post}/mark-nsfw", json={"reason": "gore"}, headers=mod).status_code == 204
    assert walk(client) == [] and client.get(f"/api/v1/posts/{post}").get_json()["nsfw"] is True
    assert_problem(client.post(f"/api/v1/mod/posts/{post}/mark-nsfw", json={"reason": "x"}, headers=mod), 409)
    assert client.post(f"/api/v1/mod/posts/{post}/unmark-nsfw", json={"reason": "art"}, headers=mod).status_code == 204
    assert walk(client) == [post]
    assert_problem(client.post(f"/api/v1/mod/posts/{post}/unmark-nsfw", json={"reason": "x"}, headers=mod), 409)
    assert_problem(client.post("/api/v1/mod/posts/999999/mark-nsfw", json={"reason": "x"}, headers=mod), 404)

    # From the report queue: a post is marked, a comment cannot be.
    reader = bearer(signed_up(client, "rita")["access_token"])
    said = comment(client, reader, post, "look")
    for kind, target in (("posts", post), ("comments", said)):
        assert client.post(f"/api/v1/{kind}/{target}/reports", json={"reason": "nsfw"}, headers=reader).status_code == 201
    resolve = "/api/v1/mod/reports/{}/{}/resolve"
    assert client.post(resolve.format("posts", post), json={"action": "mark_nsfw"}, headers=mod).status_code == 204
    assert walk(client) == []
    assert_problem(client.post(resolve.format("comments", said), json={"action": "mark_nsfw"}, headers=mod), 400)
    actions = [e["action"] for e in client.get("/api/v1/modlog").get_json()["items"]]
    assert actions[:4] == ["mark_nsfw", "resolve_mark_nsfw", "unmark_nsfw", "mark_nsfw"]


def test_a_blocked_account_vanishes_from_every_listing_of_the_blocker_alone(client: FlaskClient, settings: Settings) -> None:
    bob_token = bearer(signed_up(client, "bob")["access_token"])  # seed() keeps the account's password
    hours = [i * 5 for i in range(8)]
    bob = seed(settings.database_url, author="bob", tags=("cats",), hours=hours, likes=range(8))
    carl = seed(settings.database_url, author="carl", tags=("cats", "dogs"), hours=[h + 1 for h in hours], likes=range(8))
    rerank(settings)
    rita = bearer(signed_up(client, "rita")["access_token"])
    everyone = every_listing(client)
    thread = f"/api/v1/posts/{carl[0]}/comments"
    rude = comment(client, bob_token, carl[0], "first!")
    answer = comment(client, rita, carl[0], "stop", parent_id=rude)
    kept = comment(client, rita, carl[0], "nice one")
    assert [c["id"] for c in client.get(thread).get_json()["items"]] == [kept, rude]  # cached for everyone

    assert client.put("/api/v1/users/BOB/block", headers=rita).status_code == 204
    assert client.put("/api/v1/users/bob/block", headers=rita).status_code == 204  # idempotent
    blocked = every_listing(client, headers=rita)
    for query, shown in everyone.items():
        assert blocked[query] == [i for i in shown if i not in bob], query
    assert every_listing(client) == everyone  # nobody else's listings change
    assert [c["id"] for c in client.get(thread, headers=rita).get_json()["items"]] == [kept]  # and its replies go
    assert answer not in [r["id"] for c in client.get(thread, headers=rita).get_json()["items"] for r in c["replies"]]
    assert [c["id"] for c in client.get(thread).get_json()["items"]] == [kept, rude]
    assert client.get("/api/v1/users/bob/comments", headers=rita).get_json()["items"] == []
    assert [c["id"] for c in client.get("/api/v1/users/bob/comments").get_json()["items"]] == [rude]
    assert [u["username"] for u in client.get("/api/v1/users/me/blocks", headers=rita).get_json()["items"]] == ["bob"]
    with psycopg.connect(settings.database_url) as conn:  # bob's post shows the same media as carl's
        conn.execute("UPDATE posts SET media_id = (SELECT media_id FROM posts WHERE id = %s) WHERE id = %s", (carl[1], bob[1]))
    similar = f"/api/v1/posts/{carl[1]}/similar"
    assert [p["id"] for p in client.get(similar).get_json()["items"]] == [bob[1]]
    assert client.get(similar, headers=rita).get_json()["items"] == []

    assert client.delete("/api/v1/users/bob/block", headers=rita).status_code == 204
    assert client.delete("/api/v1/users/bob/block", headers=rita).status_code == 204
    assert every_listing(client, headers=rita) == everyone
    assert client.get("/api/v1/users/me/blocks", headers=rita).get_json() == {"items": [], "next_cursor": None}
    assert_problem(client.put("/api/v1/users/rita/block", headers=rita), 400)
    assert_problem(client.put("/api/v1/users/nobody/block", headers=rita), 404)
    assert_problem(client.put("/api/v1/users/bob/block"), 401)


def test_the_block_list_pages(client: FlaskClient, settings: Settings) -> None:
    rita = bearer(signed_up(client, "rita")["access_token"])
    names = [f"user{n}" for n in range(5)]
    for name in names:
        seed(settings.database_url, author=name)
        assert client.put(f"/api/v1/users/{name}/block", headers=rita).status_code == 204
    page = client.get("/api/v1/users/me/blocks?limit=3", headers=rita).get_json()
    rest = client.get(f"/api/v1/users/me/blocks?cursor={page['next_cursor']}", headers=rita).get_json()
    assert [u["username"] for u in page["items"] + rest["items"]] == names and rest["next_cursor"] is None
    assert_problem(client.get("/api/v1/users/me/blocks?cursor=nope", headers=rita), 400)


@pytest.mark.slow
def test_banned_media_is_refused_at_upload_and_its_lookalikes_fail(start_system, database_url: str, tmp_path: Path) -> None:
    system = start_system(WORKERS="2").wait_ready()
    alice, bob, mod = system.sign_up("alice"), system.sign_up("bob"), system.sign_up("mia")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE users SET role = 'moderator' WHERE username = 'mia'")
    picture = fixtures.meme(tmp_path, seed=7)
    [first] = published(system, alice, picture)
    [again] = published(system, bob, picture)  # the same bytes: the same media, another post

    url = f"{system.url}/api/v1/mod/posts/{first['id']}/ban-media"
    assert system.http.post(url, json={"reason": "gore"}, headers=mod).status_code == 204
    assert system.http.post(url, json={"reason": "gore"}, headers=mod).status_code == 409
    for post in (first, again):  # every post showing it is gone
        assert system.http.get(f"{system.url}/api/v1/posts/{post['id']}").status_code == 404
    refused = system.upload(bob, picture, name="renamed.png")
    assert refused.status_code == 422 and refused.json()["detail"] == "this media is banned"
    copies = published(system, bob, *(fixtures.altered(picture, tmp_path, how) for how in ("jpeg40", "half")))
    [other] = published(system, bob, fixtures.meme(tmp_path, seed=8))
    assert [(copy["status"], copy["error"]) for copy in copies] == [("failed", "this media is banned")] * 2
    assert other["status"] == "completed"

    # From the command line: a file nobody uploaded yet, a clip.
    clip = fixtures.clip(tmp_path, "testsrc2", "clip.mp4")
    settings = Settings(env="test", database_url=database_url, storage_dir=system.storage)
    banned = memedroid(settings, "ban-media", "--file", str(clip), "--reason", "leaked")
    assert banned.returncode == 0 and "banned" in banned.stdout, banned.stderr
    assert memedroid(settings, "ban-media", "--file", str(clip)).returncode == 1  # on the list already
    assert memedroid(settings, "ban-media", "--file", str(tmp_path / "none.mp4")).returncode == 1
    assert system.upload(bob, clip).json()["detail"] == "this media is banned"
    [smaller] = published(system, bob, fixtures.reencoded(clip, tmp_path, "smaller.mp4"))
    assert (smaller["status"], smaller["error"]) == ("failed", "this media is banned")
    log = system.http.get(f"{system.url}/api/v1/modlog").json()["items"]
    assert [(e["action"], e["reason"]) for e in log[:2]] == [("ban_media", "leaked"), ("ban_media", "gore")]
