"""`/api/v1/auth`: register, login, refresh, logout."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for
from flask_jwt_extended import set_refresh_cookies, unset_jwt_cookies

from memedroid.api import PREFIX, services, tokens
from memedroid.api.limits import limited, login_name
from memedroid.api.validation import json_object, length, string_fields
from memedroid.services import passwords
from memedroid.services.accounts import email_problem, public_username_problem

bp = Blueprint("auth", __name__, url_prefix=f"{PREFIX}/auth")


@bp.post("/register")
@limited("login_rate_limit")
def register() -> tuple[dict[str, object], int, dict[str, str]]:
    body = string_fields(json_object(), username=public_username_problem, email=email_problem, password=passwords.problem)
    user = services().accounts.register(body["username"], body["email"], body["password"])
    return user.public(), 201, {"Location": url_for("users.profile", username=user.username)}


# Every way of signing in counts against the same limits: per client address, and per account
# (a ceiling above the client's, so that a few addresses guessing do not lock its owner out).
@bp.post("/login")
@limited("login_rate_limit", scope="sign-in")
@limited("login_name_rate_limit", key_func=login_name, scope="sign-in-account")
def login() -> dict[str, object]:
    return _token_response(_login())


@bp.post("/web/login")
@limited("login_rate_limit", scope="sign-in")
@limited("login_name_rate_limit", key_func=login_name, scope="sign-in-account")
def web_login() -> Response:
    """The web client's sign-in: the access token in the body, the refresh token in an
    HttpOnly cookie for /auth/web/ only, and the CSRF token to send back in a readable one."""
    issued = _login()
    response = jsonify(_token_response({"access_token": issued["access_token"]}))
    set_refresh_cookies(
        response, issued["refresh_token"], max_age=services().settings.refresh_token_seconds
    )  # the session's life
    return response


def _login() -> dict[str, str]:
    body = string_fields(json_object(), login=length(1, 254), password=length(1, 1024))
    user, session_id = services().accounts.login(body["login"], body["password"])
    return tokens.issue(user.id, session_id)


@bp.post("/refresh")
@tokens.authenticated(refresh=True)
def refresh() -> dict[str, object]:
    """A new access token for a refresh token."""
    return _renewed()


@bp.post("/web/refresh")
@tokens.authenticated(refresh=True, cookie=True)
def web_refresh() -> dict[str, object]:
    """A new access token for the web client's cookie (and its X-CSRF-TOKEN header)."""
    return _renewed()


@bp.post("/web/logout")
@tokens.authenticated(refresh=True, cookie=True)
def web_logout() -> Response:
    """End the session and forget its cookies."""
    services().accounts.logout(tokens.current_session_id())
    response = Response(status=204)
    unset_jwt_cookies(response)
    return response


@bp.post("/logout")
@tokens.authenticated()
def logout() -> Response:
    services().accounts.logout(tokens.current_session_id())
    return Response(status=204)


def _renewed() -> dict[str, object]:
    """A new access token for the signed-in session."""
    return _token_response(tokens.issue(tokens.current_user_id(), tokens.current_session_id(), refresh=False))


def _token_response(issued: dict[str, str]) -> dict[str, object]:
    return {**issued, "token_type": "Bearer", "expires_in": services().settings.access_token_seconds}
