"""Abuse limits (flask-limiter): stricter for login and register, per user for uploads,
generous for reads.

Login, register and upload counters live in Redis when it is configured (in memory otherwise),
shared by every HTTP worker. Reads are counted in each worker's memory: the read path then
makes no Redis round trip for its limit, and the limit holds per worker process (a client
spread over WEB_CONCURRENCY workers may get that many times the rate) — fine for a generous
limit whose job is to stop floods, not to meter.

When the limiter's Redis is down, login and register fail closed (503): an outage must not
become a window for password guessing. Uploads fail open. Reads never depend on it.

Views declare their limits with `limited(...)` / `exempt`; `init_app` builds the Limiters per
app from its settings and applies them (so that several apps in one process do not share them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, request
from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from memedroid.errors import ServiceUnavailable
from memedroid.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
GUARDED = {"auth.login", "auth.register"}

_declared: dict[Callable[..., Any], list[tuple[str, Callable[[], str] | None]]] = {}
_exempt: set[Callable[..., Any]] = set()
# A slow Redis must not stall requests: the limiter gives up quickly and fails open (or closed, see below).
_REDIS_TIMEOUTS: dict[str, Any] = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25}


def limited(setting: str, key_func: Callable[[], str] | None = None) -> Callable[[F], F]:
    """Limit a view by the rate in `Settings.<setting>`, per client IP unless `key_func`.
    Put it right under the route decorator, above any other wrapper."""

    def declare(view: F) -> F:
        _declared.setdefault(view, []).append((setting, key_func))
        return view

    return declare


def exempt(view: F) -> F:
    _exempt.add(view)
    return view


def login_name() -> str:
    """The account a login attempt is for, so that guessing is limited per account too."""
    body = request.get_json(silent=True)
    login = body.get("login") if isinstance(body, dict) else None
    return f"login:{str(login).lower()[:254]}" if login else get_remote_address()


def current_user() -> str:
    """The signed-in user (limits are checked before the view runs, so read the token here);
    the client address when there is no valid token (the view then answers 401)."""
    try:
        verify_jwt_in_request(optional=True)
        identity = get_jwt_identity()
    except Exception:  # noqa: BLE001 - any bad token: the view reports it
        identity = None
    return f"user:{identity}" if identity else get_remote_address()


def _storage_uri(redis_url: str) -> str:
    """The `limits` library's spelling of our Redis URL (memory when there is none)."""
    if not redis_url:
        return "memory://"
    return "redis+unix://" + redis_url.removeprefix("unix://") if redis_url.startswith("unix://") else redis_url


def init_app(app: Flask, settings: Settings) -> None:
    """Call after the blueprints are registered: it wraps their views."""
    common: dict[str, Any] = {
        "strategy": "fixed-window",
        "headers_enabled": True,
        "swallow_errors": True,
        "key_prefix": "memedroid",
        "enabled": settings.rate_limits,
    }
    reads = Limiter(get_remote_address, app=app, default_limits=[settings.read_rate_limit], storage_uri="memory://", **common)
    guards = Limiter(
        get_remote_address, app=app, storage_uri=_storage_uri(settings.redis_url), storage_options=_REDIS_TIMEOUTS, **common
    )
    for endpoint, view in list(app.view_functions.items()):
        wrapped: Callable[..., Any] = view
        for setting, key_func in _declared.get(view, []):
            wrapped = guards.limit(getattr(settings, setting), key_func=key_func)(wrapped)
        if view in _exempt or view in _declared:  # a guarded view is not also a read
            wrapped = reads.exempt(wrapped)
        if view in _exempt:
            wrapped = guards.exempt(wrapped)
        app.view_functions[endpoint] = wrapped

    @app.before_request
    def fail_closed() -> None:
        if request.endpoint in GUARDED and guards.enabled and not guards.storage.check():
            raise ServiceUnavailable("sign-in is temporarily unavailable; try again shortly", retry_after=10)
