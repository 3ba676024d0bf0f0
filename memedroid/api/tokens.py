"""JWT access and refresh tokens (flask-jwt-extended): HS256 pinned, issuer checked, each pair
bound to a login session in PostgreSQL so that logout revokes both."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, Response, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_jwt,
    verify_jwt_in_request,
)

from memedroid.api import PREFIX, current
from memedroid.api.problems import problem
from memedroid.errors import Forbidden
from memedroid.services.accounts import Accounts
from memedroid.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

WEB_AUTH = f"{PREFIX}/auth/web"  # the web client's cookie sign-in


def issue(user_id: int, session_id: uuid.UUID | str, refresh: bool = True) -> dict[str, str]:
    """Signed tokens for `user_id` under `session_id`: an access token, and a refresh token
    unless `refresh` is false."""
    claims = {"sid": str(session_id)}
    tokens = {"access_token": create_access_token(identity=str(user_id), additional_claims=claims)}
    if refresh:
        tokens["refresh_token"] = create_refresh_token(identity=str(user_id), additional_claims=claims)
    return tokens


def check_access_token(optional: bool = False) -> None:
    """Verify the request's access token, and read its session, once however many ask (the
    limiter's key, the view, the reader of a feed): each check decoded the token and read the
    session again. A request without a token, or with a bad one, is checked again by the next
    asker, whose answer (a 401, or none when optional) stands."""
    request = current()
    if not request.token_checked:
        verify_jwt_in_request(optional=optional)
        request.token_checked = bool(get_jwt())


def authenticated(refresh: bool = False, cookie: bool = False) -> Callable[[F], F]:
    """Require a valid, unrevoked token (a refresh token when `refresh`; from the web client's
    cookie, with its CSRF header, when `cookie`); sets the request's `user_id`."""
    locations = ["cookies"] if cookie else None

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if refresh or cookie:
                verify_jwt_in_request(refresh=refresh, locations=locations)
            else:
                check_access_token()
            current().user_id = current_user_id()
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def moderator() -> Callable[[F], F]:
    """Require a valid token of a moderator or an admin: 401 without one, 403 for anyone else."""

    def decorate(view: F) -> F:
        @authenticated()
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current().moderator:
                raise Forbidden("only moderators may do this")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def admin() -> Callable[[F], F]:
    """Require a valid token of an admin: 401 without one, 403 for anyone else."""

    def decorate(view: F) -> F:
        @authenticated()
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current().viewer.role != "admin":
                raise Forbidden("only admins may do this")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def current_user_id() -> int:
    return int(get_jwt()["sub"])


def current_user_id_or_none() -> int | None:
    """The caller's id after an optional `verify_jwt_in_request`, or None when anonymous."""
    claims = get_jwt()
    return int(claims["sub"]) if claims else None


def current_session_id() -> str:
    return str(get_jwt()["sid"])


def _unauthorized(detail: str) -> Response:
    response = problem(401, "Unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="memedroid"'
    return response


def _missing(reason: str) -> Response:
    if not request.path.startswith(WEB_AUTH):
        return _unauthorized("missing or malformed Authorization header; expected 'Bearer <token>'")
    if "CSRF" in reason:
        return _unauthorized("the X-CSRF-TOKEN header is missing or does not match the csrf_refresh_token cookie")
    return _unauthorized("not signed in: no session cookie")


def init_app(app: Flask, settings: Settings, accounts: Accounts) -> None:
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_ENCODE_ISSUER=settings.jwt_issuer,
        JWT_DECODE_ISSUER=settings.jwt_issuer,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.access_token_seconds),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=settings.refresh_token_seconds),
        # Nodes' clocks may each be MAX_CLOCK_SKEW off the database's (beyond, they refuse to
        # run): a token another node made may be dated up to twice that in this one's future.
        JWT_DECODE_LEEWAY=timedelta(seconds=2 * settings.max_clock_skew),
        JWT_TOKEN_LOCATION=["headers"],
        # The web client's refresh token: a cookie script cannot read, sent only to /auth/web/,
        # checked against the X-CSRF-TOKEN header (double submit: the CSRF cookie is readable).
        JWT_REFRESH_COOKIE_PATH=WEB_AUTH,
        JWT_REFRESH_CSRF_COOKIE_PATH="/",
        JWT_COOKIE_SECURE=settings.production,  # plain HTTP is for development and tests
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_SESSION_COOKIE=False,  # lives as long as the refresh token, across browser restarts
    )
    manager = JWTManager(app)

    @manager.token_in_blocklist_loader
    def revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        """A token stands only while its session is open and belongs to its subject; the
        account's role and listing preferences are read with it, for this request."""
        try:
            session_id = str(uuid.UUID(str(payload.get("sid"))))
            user_id = int(payload["sub"])
        except (ValueError, KeyError, TypeError):
            return True
        viewer = accounts.viewer(session_id, user_id)
        if viewer is None:
            return True
        current().viewer = viewer
        return False

    def token_problem(detail: str) -> Callable[..., Response]:
        return lambda *_args: _unauthorized(detail)

    manager.unauthorized_loader(_missing)
    manager.invalid_token_loader(token_problem("the token is invalid"))
    manager.expired_token_loader(token_problem("the token has expired"))
    manager.revoked_token_loader(token_problem("the token has been revoked"))
    manager.needs_fresh_token_loader(token_problem("a fresh login is required"))
    manager.token_verification_failed_loader(token_problem("the token is invalid"))
    manager.user_lookup_error_loader(token_problem("the token's user no longer exists"))
