"""Abuse limits (flask-limiter): stricter for login and register, per user for uploads,
generous for reads.

Login, register and upload limits are flask-limiter decorators counting in Redis when it is
configured (in memory otherwise), shared by every HTTP worker. Their limiter's global request
hook is removed: it only re-checks the decorated views, and cost ~180 µs on every request.

Reads are counted in each worker's memory by `ReadLimit`, a fixed window from the `limits`
library flask-limiter itself runs on (~10 µs a request, no Redis round trip). The limit then
holds per worker process (a client spread over WEB_CONCURRENCY workers may get that many
times the rate) — fine for a generous limit whose job is to stop floods, not to meter.

When the limiter's Redis is down, login and register fail closed (503): an outage must not
become a window for password guessing. Uploads fail open. Reads never depend on it.

Views declare their limits with `limited(...)` / `exempt`; `init_app` builds the limiter and
the read limit per app from its settings (so that several apps in one process share neither).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, g, request
from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from memedroid.api import services
from memedroid.api.validation import text_problem
from memedroid.errors import ServiceUnavailable, TooManyRequests
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
    """The account a login attempt is for, so that guessing is limited per account too: one
    counter whether it is named by username or by email."""
    body = request.get_json(silent=True)
    login = body.get("login") if isinstance(body, dict) else None
    if not isinstance(login, str) or not login or text_problem(login):
        return get_remote_address()
    return services().accounts.limit_key(login[:254])


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
    app.after_request(_retry_after_only_when_refused)  # registered first, so it runs after the limiter's
    guards = Limiter(
        get_remote_address,
        app=app,
        storage_uri=_storage_uri(settings.redis_url),
        storage_options=_REDIS_TIMEOUTS,
        strategy="fixed-window",
        headers_enabled=True,
        swallow_errors=True,
        key_prefix="memedroid",
        enabled=settings.rate_limits,
    )
    if guards._check_request_limit in app.before_request_funcs.get(None, []):  # absent when disabled
        app.before_request_funcs[None].remove(guards._check_request_limit)  # the decorators check
    not_reads = set()
    for endpoint, view in list(app.view_functions.items()):
        wrapped: Callable[..., Any] = view
        for setting, key_func in _declared.get(view, []):
            wrapped = guards.limit(getattr(settings, setting), key_func=key_func)(wrapped)
        app.view_functions[endpoint] = wrapped
        if view in _exempt or view in _declared:  # a guarded view is not also a read
            not_reads.add(endpoint)
    if settings.rate_limits:
        ReadLimit(settings.read_rate_limit, not_reads).init_app(app)

    @app.before_request
    def fail_closed() -> None:
        if request.endpoint in GUARDED and guards.enabled and not guards.storage.check():
            raise ServiceUnavailable("sign-in is temporarily unavailable; try again shortly", retry_after=10)


def _retry_after_only_when_refused(response: Response) -> Response:
    """flask-limiter puts `Retry-After` on every answer of a limited view; it belongs only on
    answers that ask the client to come back (429, 503)."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


class ReadLimit:
    """Every other request: a fixed window per client address in this process's memory, with
    flask-limiter's `X-RateLimit-*` headers and a 429 problem when it is spent."""

    def __init__(self, rate: str, skip: set[str]) -> None:
        self.item = parse(rate)
        self.window = FixedWindowRateLimiter(MemoryStorage())
        self.skip = skip

    def init_app(self, app: Flask) -> None:
        app.before_request(self.check)
        app.after_request(self.headers)

    def check(self) -> None:
        if request.endpoint is None or request.endpoint in self.skip:
            return
        key = get_remote_address()
        allowed = self.window.hit(self.item, "memedroid/read", key)
        g.read_limit = stats = self.window.get_window_stats(self.item, "memedroid/read", key)
        if not allowed:
            raise TooManyRequests(str(self.item), retry_after=max(1, math.ceil(stats.reset_time - time.time())))

    def headers(self, response: Response) -> Response:
        stats = g.pop("read_limit", None)
        if stats is not None:
            response.headers["X-RateLimit-Limit"] = str(self.item.amount)
            response.headers["X-RateLimit-Remaining"] = str(stats.remaining)
            response.headers["X-RateLimit-Reset"] = str(math.ceil(stats.reset_time))
        return response
