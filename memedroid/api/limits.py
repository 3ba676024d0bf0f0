"""Abuse limits (flask-limiter): stricter for login and register, per user for uploads,
generous for reads. Counters live in Redis when it is configured, in memory otherwise.

When the limiter's Redis is down, reads fail open (served, unlimited) and login and register
fail closed (503): an outage must not become a window for password guessing.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from memedroid.errors import ServiceUnavailable
from memedroid.settings import Settings

limiter = Limiter(get_remote_address, swallow_errors=True, headers_enabled=True, strategy="fixed-window")
GUARDED = {"auth.login", "auth.register"}


def login_name() -> str:
    """The account a login attempt is for, so that guessing is limited per account too."""
    body = request.get_json(silent=True)
    login = body.get("login") if isinstance(body, dict) else None
    return f"login:{str(login).lower()[:254]}" if login else get_remote_address()


def current_user() -> str:
    return f"user:{g.get('user_id')}"


def _fail_closed() -> None:
    if request.endpoint in GUARDED and limiter.enabled and not limiter.storage.check():
        raise ServiceUnavailable("sign-in is temporarily unavailable; try again shortly", retry_after=10)


def _storage_uri(redis_url: str) -> str:
    """The `limits` library's spelling of our Redis URL (memory when there is none)."""
    if not redis_url:
        return "memory://"
    return "redis+unix://" + redis_url.removeprefix("unix://") if redis_url.startswith("unix://") else redis_url


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        RATELIMIT_ENABLED=settings.rate_limits,
        RATELIMIT_STORAGE_URI=_storage_uri(settings.redis_url),
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 0.25, "socket_connect_timeout": 0.25},
        RATELIMIT_DEFAULT=settings.read_rate_limit,
        RATELIMIT_KEY_PREFIX="memedroid",
    )
    limiter.init_app(app)
    app.before_request(_fail_closed)
