"""HTTP caching in the app itself: who may keep an answer (Cache-Control, Vary), validators
(ETag) and conditional requests (304), HEAD."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import fixtures
import pytest
from flask import Flask, request_started
from flask.testing import FlaskClient
from helpers import assert_problem, bearer, metric, only_our_handler, seed, signed_up

from memedroid import logs
from memedroid.settings import Settings

PUBLIC = "public, max-age=1, stale-while-revalidate=5"


def revalidated(client: FlaskClient, url: str, **kwargs: object) -> tuple[str, int]:
    """Fetch `url`, then again with its ETag: the ETag and the second answer's status."""
    first = client.get(url, **kwargs)  # type: ignore[arg-type]
    assert first.status_code == 200, first.get_data(as_text=True)
    etag = first.headers["ETag"]
    again = client.get(url, headers={**kwargs.get("headers", {}), "If-None-Match": etag})  # type: ignore[dict-item]
    if again.status_code == 304:
        assert again.get_data() == b"" and again.headers["ETag"] == etag
    return etag, again.status_code


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/posts",
        "/api/v1/posts?sort=hot",
        "/api/v1/posts?sort=top&window=week",
        "/api/v1/posts?tag=cats",
        "/api/v1/posts?author=alice",
        "/api/v1/posts/{post}/comments",
        "/api/v1/users/alice",
        "/api/v1/users/alice/comments",
        "/api/v1/tags?prefix=ca",
        "/api/v1/tags/trending",
        "/api/v1/modlog",
    ],
)
def test_every_anonymous_read_may_be_kept_by_a_shared_cache_and_revalidated(
    client: FlaskClient, settings: Settings, url: str
) -> None:
    [post] = seed(settings.database_url, 1, tags=("cats",))
    url = url.format(post=post)
    response = client.get(url)
    assert response.headers["Cache-Control"] == PUBLIC and response.headers["Vary"] == "Authorization"
    etag, status = revalidated(client, url)
    assert etag.startswith('"') and status == 304  # a strong validator


def test_a_cached_page_answers_304_without_rendering_anything(
    client: FlaskClient, settings: Settings, statements: Callable[[], int]
) -> None:
    seed(settings.database_url, 30)
    etag = client.get("/api/v1/posts").headers["ETag"]
    before = statements()
    for _ in range(3):
        assert client.get("/api/v1/posts", headers={"If-None-Match": etag}).status_code == 304
    assert statements() == before  # no query: the tag came with the cached page
    assert client.get("/api/v1/posts", headers={"If-None-Match": '"something else"'}).status_code == 200


def test_a_revalidation_of_a_shared_page_is_answered_in_front_of_flask(
    make_client: Callable[..., FlaskClient],
    settings: Settings,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the view has shown a URL's page, a revalidation of it gets the view's 304, header
    for header, without a Flask request (while the page is in this process's cache); it is
    logged and measured as one."""
    seed(settings.database_url, 3)
    client = make_client(feed_local_seconds=60)
    app = client.application
    etag = client.get("/api/v1/posts?limit=20").headers["ETag"]  # the page of /api/v1/posts, under another URL
    logs.configure("INFO", role="http")
    only_our_handler(monkeypatch)
    capfd.readouterr()  # lines written before
    answered = {"endpoint": "/api/v1/posts", "method": "GET", "status": "304"}
    counted = metric("memedroid_http_request_duration_seconds_count", **answered)
    flask_requests: list[object] = []
    with request_started.connected_to(lambda _app, **_: flask_requests.append(_app), app):
        by_view, in_front = (
            client.get("/api/v1/posts", headers={"If-None-Match": etag, "X-Request-ID": name}) for name in ("view", "front")
        )
    assert by_view.status_code == in_front.status_code == 304 and in_front.get_data() == b""
    assert len(flask_requests) == 1  # the view's
    assert by_view.headers.pop("X-Request-ID") == "view" and in_front.headers.pop("X-Request-ID") == "front"
    assert list(by_view.headers.items()) == list(in_front.headers.items())
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"event":"request"' in line]
    assert [(line["request_id"], line["status"], line["path"]) for line in lines] == [
        ("view", 304, "/api/v1/posts"),
        ("front", 304, "/api/v1/posts"),
    ]
    assert metric("memedroid_http_request_duration_seconds_count", **answered) == counted + 2


def test_the_front_answers_only_what_the_view_would(make_client: Callable[..., FlaskClient], settings: Settings) -> None:
    """A page gone from this process's cache, a changed page or a signed-in reader go on to
    the view; so does a revalidation over the read limit, for its 429."""
    seed(settings.database_url, 3)
    client = make_client(read_rate_limit="4/minute", feed_local_seconds=60)
    etag = client.get("/api/v1/posts").headers["ETag"]  # 1 read
    fresh = {"If-None-Match": etag}
    assert client.get("/api/v1/posts", headers=fresh).status_code == 304  # 2
    client.application.extensions["memedroid"].feeds.cache.local.clear()  # the page left this process's cache
    assert client.get("/api/v1/posts", headers=fresh).status_code == 304  # 3: the view, from Redis
    [newest] = seed(settings.database_url, 1)
    client.application.extensions["memedroid"].feeds.cache.invalidate()
    changed = client.get("/api/v1/posts", headers=fresh)  # 4
    assert changed.status_code == 200 and changed.get_json()["items"][0]["id"] == newest
    assert assert_problem(client.get("/api/v1/posts", headers={"If-None-Match": changed.headers["ETag"]}), 429)
    other = make_client(feed_local_seconds=60)
    auth = bearer(signed_up(other, "bob")["access_token"])
    assert other.get("/api/v1/posts", headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304
    private = other.get("/api/v1/posts", headers={**auth, "If-None-Match": changed.headers["ETag"]})
    assert private.status_code == 200 and private.headers["Cache-Control"] == "private, no-cache"


def test_a_change_to_the_feed_changes_its_etag(app: Flask, client: FlaskClient, settings: Settings) -> None:
    seed(settings.database_url, 3)
    etag = client.get("/api/v1/posts").headers["ETag"]
    bob = bearer(signed_up(client, "bob")["access_token"])
    [newest] = seed(settings.database_url, 1, author="carol")
    app.extensions["memedroid"].feeds.cache.invalidate()  # what the finalizer does when a post completes
    changed = client.get("/api/v1/posts", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.get_json()["items"][0]["id"] == newest
    assert client.put(f"/api/v1/posts/{newest}/like", headers=bob).status_code == 204
    top = client.get("/api/v1/posts?sort=top")
    assert client.get("/api/v1/posts?sort=top", headers={"If-None-Match": top.headers["ETag"]}).status_code == 304


def test_a_signed_in_read_is_private_and_still_revalidates(client: FlaskClient, settings: Settings) -> None:
    [post] = seed(settings.database_url, 1)
    auth = bearer(signed_up(client, "bob")["access_token"])
    for url in ("/api/v1/posts", "/api/v1/users/me", f"/api/v1/posts/{post}/comments"):
        response = client.get(url, headers=auth)
        assert response.headers["Cache-Control"] == "private, no-cache" and response.headers["Vary"] == "Authorization"
        assert revalidated(client, url, headers=auth)[1] == 304
    liked = client.get("/api/v1/posts", headers=auth).headers["ETag"]
    assert client.put(f"/api/v1/posts/{post}/like", headers=auth).status_code == 204
    assert client.get("/api/v1/posts", headers={**auth, "If-None-Match": liked}).status_code == 200  # liked_by_me changed


def test_a_posts_validator_is_weak_and_a_304_still_counts_the_view(client: FlaskClient, settings: Settings) -> None:
    [post] = seed(settings.database_url, 1)
    first = client.get(f"/api/v1/posts/{post}")
    assert first.headers["ETag"].startswith('W/"') and first.get_json()["view_count"] == 1
    assert client.get(f"/api/v1/posts/{post}", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert client.get(f"/api/v1/posts/{post}").get_json()["view_count"] == 3


def test_writes_errors_and_probes_are_never_stored(client: FlaskClient, settings: Settings, tmp_path: Path) -> None:
    [post] = seed(settings.database_url, 1)
    auth = bearer(signed_up(client, "bob")["access_token"])
    with fixtures.jpeg(tmp_path).open("rb") as picture:
        accepted = client.post("/api/v1/posts", headers=auth, data={"file": (picture, "a.jpg")})
    assert accepted.status_code == 202
    answers = [
        accepted,
        client.get("/api/v1/posts/999999", headers=auth),
        client.get("/api/v1/posts?sort=nope"),
        client.get("/api/v1/users/me"),
        client.put(f"/api/v1/posts/{post}/like", headers=auth),
        client.post(f"/api/v1/posts/{post}/comments", headers=auth, json={"body": "hi"}),
        client.get("/healthz"),
        client.get("/readyz"),
    ]
    assert [a.headers["Cache-Control"] for a in answers] == ["no-store"] * len(answers)
    assert all("ETag" not in a.headers for a in answers)
    # An anonymous read of what is not there (any more) is kept briefly by a shared cache, in
    # place of the 200 it may hold for that URL, and never served stale.
    gone = client.get("/api/v1/posts/999999")
    assert gone.status_code == 404 and gone.headers["Cache-Control"] == "public, max-age=1"
    assert gone.headers["Vary"] == "Authorization"


def test_head_answers_as_get_does_without_a_body(client: FlaskClient, settings: Settings) -> None:
    post = seed(settings.database_url, 2)[0]
    for url in ("/api/v1/posts", f"/api/v1/posts/{post}", "/api/v1/tags/trending"):
        got, head = client.get(url), client.head(url)
        assert head.status_code == 200 and head.get_data() == b""
        assert head.headers["Cache-Control"] == got.headers["Cache-Control"]
        assert head.headers["Content-Type"] == got.headers["Content-Type"]
    etag = client.get("/api/v1/posts").headers["ETag"]
    assert client.head("/api/v1/posts").headers["ETag"] == etag
    assert client.head("/api/v1/posts", headers={"If-None-Match": etag}).status_code == 304


def test_the_lifetimes_are_settings(make_client: Callable[..., FlaskClient], settings: Settings) -> None:
    seed(settings.database_url, 1)
    client = make_client(http_max_age=30, http_stale_seconds=0)
    assert client.get("/api/v1/posts").headers["Cache-Control"] == "public, max-age=30, stale-while-revalidate=0"
