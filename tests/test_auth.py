"""Accounts and tokens through the HTTP API, against a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from conftest import TEST_SECRET
from flask import Flask
from flask.testing import FlaskClient
from helpers import PASSWORD, assert_problem, bearer, login, register, signed_up


def test_register_login_me_round_trip(client: FlaskClient) -> None:
    response = register(client, "Alice_1", "Alice@Example.com")
    assert response.status_code == 201
    user = response.get_json()
    assert set(user) == {"id", "username", "created_at"}
    assert user["username"] == "Alice_1"
    assert response.headers["Location"] == "/api/v1/users/Alice_1"

    tokens = login(client, "alice@example.COM").get_json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    me = client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.get_json() == {**user, "email": "Alice@Example.com", "show_nsfw": False, "role": "user"}
    assert "password" not in me.get_data(as_text=True)

    assert client.get("/api/v1/users/alice_1").get_json() == {**user, "post_count": 0, "like_count": 0, "comment_count": 0}


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        (("alice", "a@example.com"), ("ALICE", "b@example.com"), "username"),
        (("alice", "a@example.com"), ("bob", "A@EXAMPLE.com"), "email"),
    ],
)
def test_duplicates_differing_only_in_case_conflict(client: FlaskClient, first, second, field) -> None:
    assert register(client, *first).status_code == 201
    body = assert_problem(register(client, *second), 409)
    assert body["field"] == field
    assert field in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "al", "email": "a@example.com", "password": PASSWORD}, "username"),
        ({"username": "a" * 31, "email": "a@example.com", "password": PASSWORD}, "username"),
        ({"username": "al ice", "email": "a@example.com", "password": PASSWORD}, "username"),
        ({"username": "alice", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "a@b", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "a@example.com", "password": "short"}, "password"),
        ({"username": "alice", "email": "a@example.com", "password": 12345678}, "password"),
        ({"username": "alice", "email": "a@example.com"}, "password"),
        ({"username": "alice", "email": "a@example.com", "password": PASSWORD, "admin": True}, "admin"),
        # Found by schemathesis: text PostgreSQL (NUL) or UTF-8 (a lone surrogate) cannot hold.
        ({"username": "alice", "email": "a\x00b@example.com", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "a@example.com", "password": PASSWORD + "\ud800"}, "password"),
    ],
)
def test_each_invalid_field_is_named(client: FlaskClient, body, field) -> None:
    problem = assert_problem(client.post("/api/v1/auth/register", json=body), 400)
    assert [error["field"] for error in problem["errors"]] == [field]
    assert field in problem["detail"]


def test_password_over_72_bytes_is_a_clear_400(client: FlaskClient) -> None:
    password = "é" * 36 + "x"  # 36 characters would fit; 73 bytes do not
    assert len(password.encode()) == 73
    problem = assert_problem(register(client, password=password), 400)
    assert problem["errors"] == [{"field": "password", "message": "must be at most 72 bytes in UTF-8 (this one is 73)"}]
    assert register(client, password="é" * 36).status_code == 201
    # Logging in with an overlong password is a plain failed login, never a crash.
    assert_problem(login(client, password=password), 401)
    assert_problem(login(client, password="\ud800" * 9), 400)


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("[" * 50_000 + "]" * 50_000, "application/json", 400),  # deeper than the parser's recursion
        ("username=alice", "application/x-www-form-urlencoded", 415),
    ],
)
def test_malformed_bodies(client: FlaskClient, data: str, content_type: str, status: int) -> None:
    for url in ("/api/v1/auth/register", "/api/v1/auth/login"):
        assert_problem(client.post(url, data=data, content_type=content_type), status)


def test_wrong_password_and_unknown_user_are_indistinguishable(app: Flask, client: FlaskClient) -> None:
    app.extensions["memedroid"].accounts.rounds = 10  # slow enough for timing to mean something
    assert register(client).status_code == 201

    def attempt(name: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = login(client, name, "wrong password!")
        elapsed = time.perf_counter() - started
        body = assert_problem(response, 401)
        del body["request_id"]
        return elapsed, body

    wrong_password = [attempt("alice") for _ in range(5)]
    unknown_user = [attempt("mallory") for _ in range(5)]
    assert wrong_password[0][1] == unknown_user[0][1]
    ratio = statistics.median(t for t, _ in unknown_user) / statistics.median(t for t, _ in wrong_password)
    assert 0.5 < ratio < 2.0, f"unknown user takes {ratio:.2f}x the time of a wrong password"


def _token(claims: dict, key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": "1",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "jti": str(uuid.uuid4()),
        "type": "access",
        "fresh": False,
        "iss": "memedroid",
        **claims,
    }
    return jwt.encode(payload, key, algorithm=algorithm)


def _unsigned(token: str) -> str:
    """The same claims with `alg: none` and no signature."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return f"{header}.{token.split('.')[1]}."


def test_bad_tokens_are_401(client: FlaskClient) -> None:
    tokens = signed_up(client)
    good = tokens["access_token"]
    sid = jwt.decode(good, options={"verify_signature": False})["sid"]
    me = "/api/v1/users/me"
    assert client.get(me, headers=bearer(good)).status_code == 200
    # A token crafted here with the right key is accepted, so each rejection below is for its flaw.
    assert client.get(me, headers=bearer(_token({"sid": sid}))).status_code == 200

    assert register(client, "bob").status_code == 201  # whose id is alice's + 1
    head, body, signature = good.split(".")
    tampered_signature = f"{head}.{body}.{signature[:-4]}AAAA"
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "2"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    cases = {
        "tampered signature": tampered_signature,
        "tampered claims": f"{head}.{forged_body}.{signature}",
        "expired": _token({"sid": sid, "exp": datetime.now(UTC) - timedelta(minutes=2)}),  # past the clocks' leeway
        "from the future": _token({"sid": sid, "nbf": datetime.now(UTC) + timedelta(minutes=2)}),
        "alg none": _unsigned(good),
        "other algorithm": _token({"sid": sid}, algorithm="HS512"),
        "wrong issuer": _token({"sid": sid, "iss": "someone-else"}),
        "wrong key": _token({"sid": sid}, key="another-secret-" + "k" * 60),
        "no session": _token({}),
        "unknown session": _token({"sid": str(uuid.uuid4())}),
        "another user's session": _token(
            {"sid": sid, "sub": str(int(jwt.decode(good, options={"verify_signature": False})["sub"]) + 1)}
        ),
        "refresh token as access": tokens["refresh_token"],
        "garbage": "not.a.token",
    }
    for case, token in cases.items():
        response = client.get(me, headers=bearer(token))
        assert response.status_code == 401, case
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
    assert "expired" in client.get(me, headers=bearer(cases["expired"])).get_json()["detail"]
    assert_problem(client.get(me), 401)
    assert_problem(client.get(me, headers={"Authorization": "Basic abc"}), 401)


def test_refresh_and_logout_revoke_the_session(client: FlaskClient) -> None:
    tokens = signed_up(client)
    access, refresh_token = tokens["access_token"], tokens["refresh_token"]

    # An access token cannot refresh; the refresh token can.
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(access)), 401)
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(refresh_token))
    assert refreshed.status_code == 200
    new_access = refreshed.get_json()["access_token"]
    assert set(refreshed.get_json()) == {"access_token", "token_type", "expires_in"}
    assert client.get("/api/v1/users/me", headers=bearer(new_access)).status_code == 200

    assert client.post("/api/v1/auth/logout", headers=bearer(access)).status_code == 204
    for token in (access, new_access):
        problem = assert_problem(client.get("/api/v1/users/me", headers=bearer(token)), 401)
        assert "revoked" in problem["detail"]
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(refresh_token)), 401)

    # Another login is a new session, unaffected.
    again = login(client).get_json()
    assert client.get("/api/v1/users/me", headers=bearer(again["access_token"])).status_code == 200


def test_revocation_lives_in_postgresql(settings, client: FlaskClient) -> None:
    tokens = signed_up(client)
    client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    # A brand-new app (another process, Redis or not) sees the revocation.
    from memedroid.api.app import create_app

    other = create_app(settings)
    try:
        response = other.test_client().get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
        assert_problem(response, 401)
    finally:
        other.extensions["memedroid"].close()
