"""The web client as HTTP sees it: the page and its headers, the content-hashed assets, and the
cookie sign-in (HttpOnly refresh cookie, CSRF double submit). tests/test_browser.py drives it
in a real Chromium."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import unescape
from http.cookies import SimpleCookie

import psycopg
import pytest
from flask.testing import FlaskClient
from helpers import PASSWORD, assert_problem, bearer, register, rerank, seed

from memedroid.api import web
from memedroid.settings import Settings

WEB_AUTH = "/api/v1/auth/web"


def sign_in(client: FlaskClient, username: str = "alice") -> dict[str, SimpleCookie]:
    """Register and sign in from the web; the cookies the answer set, by name."""
    assert register(client, username).status_code == 201
    response = client.post(f"{WEB_AUTH}/login", json={"login": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie(header)
        cookies.update({name: cookie for name in cookie})
    return cookies


def csrf(client: FlaskClient) -> dict[str, str]:
    cookie = client.get_cookie("csrf_refresh_token")
    assert cookie is not None
    return {"X-CSRF-TOKEN": cookie.value}


@pytest.mark.parametrize("path", ["/", "/new", "/top?window=day", "/t/cats", "/u/alice", "/p/1", "/upload", "/mod"])
def test_every_client_route_answers_the_small_page_with_a_strict_policy(client: FlaskClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert len(page.data) < 4096
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and re.fullmatch(r"'self' 'sha256-[A-Za-z0-9+/]+=*'", policy["style-src"])
    assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'none'"
    assert "unsafe" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-cache"
    html = page.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html  # nothing inline for the policy to allow
    assert "http://" not in html and "https://" not in html  # nothing from another site


def first_page(html: str) -> tuple[str, dict] | None:
    """The API path and answer a page carries for the client, if any."""
    found = re.search(r'<script type="application/json" id="first-page" data-path="([^"]+)">(.*?)</script>', html, re.S)
    return (unescape(found[1]), json.loads(found[2])) if found else None


@pytest.mark.parametrize(
    ("path", "asked"),
    [
        ("/", "/posts?sort=hot&limit=10"),
        ("/new", "/posts?sort=new&limit=10"),
        ("/top", "/posts?sort=top&limit=10&window=week"),
        ("/top?window=year", "/posts?sort=top&limit=10&window=year"),
        ("/t/Cats", "/posts?sort=new&limit=10&tag=Cats"),
    ],
)
def test_a_feed_page_comes_with_the_api_page_the_client_asks_first(
    client: FlaskClient, settings: Settings, database_url: str, path: str, asked: str
) -> None:
    [newest] = seed(database_url, tags=("cats",), hours=[12 - h for h in range(12)], likes=[1] * 12)[-1:]
    rerank(settings)
    with psycopg.connect(database_url) as conn:  # a caption that tries to end the data block
        conn.execute("UPDATE posts SET caption = %s WHERE id = %s", ("</script><script>alert(1)</script>", newest))
    page = client.get(path)
    html = page.get_data(as_text=True)
    given = first_page(html)
    assert given is not None and given[0] == asked
    assert given[1] == client.get(f"/api/v1{asked}").get_json()
    assert "</script><script>" not in html
    assert html.count("<script") == 2  # the data block and the module
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None  # inline, allowed by its hash alone, and no module fetched beside the meme
    assert (
        f"'sha256-{base64.b64encode(hashlib.sha256(style[1].encode()).digest()).decode()}'"
        in page.headers["Content-Security-Policy"]
    )
    assert "modulepreload" not in html and 'rel="stylesheet"' not in html
    assert html.count('<article class="card"') == 3 and html.count('fetchpriority="high"') == 2  # the image and its preload
    first_url = given[1]["items"][0]["media"]["url"]
    assert f'<link rel="preload" as="image" href="{first_url}" fetchpriority="high">' in html


@pytest.mark.parametrize("path", ["/p/1", "/upload", "/u/alice", "/t/" + "x" * 40])
def test_other_pages_carry_no_data(client: FlaskClient, database_url: str, path: str) -> None:
    seed(database_url, 3)
    page = client.get(path)
    assert page.status_code == 200 and first_page(page.get_data(as_text=True)) is None


def test_a_signed_in_browser_gets_no_shared_page(client: FlaskClient, database_url: str) -> None:
    seed(database_url, 3)
    sign_in(client, "bob")
    assert first_page(client.get("/").get_data(as_text=True)) is None  # its reader's own view: likes, NSFW, blocks


def test_media_from_another_origin_is_allowed_by_name_only(make_client) -> None:
    policy = make_client(media_url="https://cdn.example.com/m").get("/").headers["Content-Security-Policy"]
    assert "img-src 'self' blob: data: https://cdn.example.com;" in policy
    assert "media-src 'self' blob: https://cdn.example.com;" in policy


def test_assets_have_content_hashed_names_and_are_cached_for_good(client: FlaskClient) -> None:
    html = client.get("/p/1").get_data(as_text=True)
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert {re.sub(r"\.[0-9a-f]{12}\.", ".", url) for url in urls} >= {"/static/main.js", "/static/app.css", "/static/client.js"}
    total = len(html.encode())
    for url in set(urls):
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert client.get(url, headers={"If-None-Match": asset.headers["ETag"]}).status_code == 304
        total += len(asset.data)
        for imported in re.findall(r'from "([^"]+)"', asset.get_data(as_text=True)):
            assert imported in urls, f"{url} imports {imported} up front, which the page does not preload by that name"
        for imported in re.findall(r'import\("([^"]+)"\)', asset.get_data(as_text=True)):
            assert client.get(imported).status_code == 200, f"{url} imports {imported} later, which is not served"
    assert total < 100_000  # everything the page loads before the first meme, uncompressed
    assert_problem(client.get("/static/main.js"), 404)  # only the hashed names are served
    assert_problem(client.get("/static/../settings.py"), 404)


def test_a_changed_module_renames_itself_and_every_module_that_imports_it(tmp_path) -> None:
    for name in ("app.js", "card.js", "dom.js", "app.css", "icon.svg", "index.html"):
        (tmp_path / name).write_text((web.FOLDER / name).read_text() if name == "index.html" else f"// {name}\n")
    (tmp_path / "app.js").write_text('import { card } from "./card.js";\n')
    (tmp_path / "card.js").write_text('import { h } from "./dom.js";\n')
    before = web.Assets(tmp_path).urls
    (tmp_path / "dom.js").write_text("// changed\n")
    after = web.Assets(tmp_path).urls
    assert {name for name in before if before[name] != after[name]} == {"dom.js", "card.js", "app.js"}
    assert after["dom.js"] in web.Assets(tmp_path).files[after["card.js"].rsplit("/", 1)[1]].body.decode()
    (tmp_path / "dom.js").write_text('import { x } from "./missing.js";\n')
    with pytest.raises(ValueError, match="missing"):
        web.Assets(tmp_path)


def test_web_sign_in_keeps_the_refresh_token_out_of_reach_of_script(client: FlaskClient) -> None:
    cookies = sign_in(client)
    body = client.post(f"{WEB_AUTH}/login", json={"login": "alice", "password": PASSWORD}).get_json()
    assert set(body) == {"access_token", "token_type", "expires_in"}  # no refresh token in the body
    refresh = cookies["refresh_token_cookie"]["refresh_token_cookie"]
    assert refresh["httponly"] and refresh["samesite"] == "Strict" and refresh["path"] == WEB_AUTH
    token = cookies["csrf_refresh_token"]["csrf_refresh_token"]
    assert not token["httponly"] and token["path"] == "/" and token["samesite"] == "Strict"
    assert client.get("/api/v1/users/me", headers=bearer(body["access_token"])).get_json()["username"] == "alice"


def test_the_cookie_is_secure_in_production(make_client) -> None:
    client = make_client(env="production")
    cookies = sign_in(client)
    assert cookies["refresh_token_cookie"]["refresh_token_cookie"]["secure"]


def test_refresh_from_the_cookie_needs_the_csrf_header(client: FlaskClient) -> None:
    sign_in(client)
    missing = assert_problem(client.post(f"{WEB_AUTH}/refresh"), 401)
    assert "X-CSRF-TOKEN" in missing["detail"]
    assert_problem(client.post(f"{WEB_AUTH}/refresh", headers={"X-CSRF-TOKEN": "forged"}), 401)
    renewed = client.post(f"{WEB_AUTH}/refresh", headers=csrf(client))
    assert renewed.status_code == 200
    assert client.get("/api/v1/users/me", headers=bearer(renewed.get_json()["access_token"])).status_code == 200


def test_the_bearer_api_takes_no_cookie(client: FlaskClient) -> None:
    sign_in(client)
    assert_problem(client.post("/api/v1/auth/refresh", headers=csrf(client)), 401)
    assert_problem(client.get("/api/v1/users/me", headers=csrf(client)), 401)


def test_web_sign_out_ends_the_session_and_clears_the_cookies(client: FlaskClient) -> None:
    sign_in(client)
    access = client.post(f"{WEB_AUTH}/refresh", headers=csrf(client)).get_json()["access_token"]
    headers = csrf(client)
    out = client.post(f"{WEB_AUTH}/logout", headers=headers)
    assert out.status_code == 204
    assert client.get_cookie("refresh_token_cookie") is None and client.get_cookie("csrf_refresh_token") is None
    assert_problem(client.get("/api/v1/users/me", headers=bearer(access)), 401)  # the session is revoked
    assert_problem(client.post(f"{WEB_AUTH}/refresh", headers=headers), 401)
    assert assert_problem(client.post(f"{WEB_AUTH}/logout"), 401)["detail"] == "not signed in: no session cookie"


def test_the_account_says_its_role(client: FlaskClient) -> None:
    sign_in(client)
    access = client.post(f"{WEB_AUTH}/refresh", headers=csrf(client)).get_json()["access_token"]
    assert client.get("/api/v1/users/me", headers=bearer(access)).get_json()["role"] == "user"
