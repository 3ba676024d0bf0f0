"""Abuse limits (flask-limiter): stricter for login and register, per user for uploads,
generous for reads.

Login, register and upload limits are flask-limiter decorators counting in Redis when it is
configured (in memory otherwise), shared by every HTTP worker. flask-limiter hooks every
request of the app; its hooks run for the views it limits only (see `_guarded`).

Reads are counted in each worker's memory by `ReadLimit`, a fixed window of our own (~1 µs a
request, no Redis round trip; the `limits` library's memory storage starts a timer thread per
burst and, under threads, once failed a read with a 500 starting one twice). The limit then
holds per worker process (a client spread over WEB_CONCURRENCY workers may get that many
times the rate) — fine for a generous limit whose job is to stop floods, not to meter.

When the limiter's Redis fails to count a hit (it is down, or refuses writes: out of memory,
read-only, a failed save), login and register fail closed (503): an outage must not become a
window for password guessing. Uploads fail open. Reads never depend on it. The failure is
logged once when it starts and once when it ends (`limiter_degraded`, `limiter_recovered`),
not with a traceback per request.

Views declare their limits with `limited(...)` / `exempt`; `init_app` builds the limiter and
the read limit per app from its settings (so that several apps in one process share neither).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, after_this_request, request
from flask_jwt_extended import get_jwt_identity
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from limits.errors import StorageError

from memedroid.api import current, services
from memedroid.api.tokens import check_access_token
from memedroid.api.validation import text_problem
from memedroid.errors import ServiceUnavailable, TooManyRequests
from memedroid.logs import Degradation
from memedroid.settings import Settings

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Hook = Callable[..., Any]
FAIL_CLOSED = {"auth.login", "auth.web_login", "auth.register"}

_declared: dict[Callable[..., Any], list[tuple[str, Callable[[], str] | None, str | None]]] = {}
_exempt: set[Callable[..., Any]] = set()
# A slow Redis must not stall requests: the limiter gives up quickly and fails open (or closed,
# see below); its storage errors arrive as `StorageError`, whatever Redis said.
_STORAGE_OPTIONS: dict[str, Any] = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25, "wrap_exceptions": True}


def limited(setting: str, key_func: Callable[[], str] | None = None, scope: str | None = None) -> Callable[[F], F]:
    """Limit a view by the rate in `Settings.<setting>`, per client IP unless `key_func`; views
    that name the same `scope` count against one limit (else each view has its own). Put it
    right under the route decorator, above any other wrapper."""

    def declare(view: F) -> F:
        _declared.setdefault(view, []).append((setting, key_func, scope))
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
        check_access_token(optional=True)
        identity = get_jwt_identity()
    except Exception:  # noqa: BLE001 - any bad token: the view reports it
        identity = None
    return f"user:{identity}" if identity else get_remote_address()


def _storage_uri(redis_url: str) -> str:
    """The `limits` library's spelling of our Redis URL (memory when there is none)."""
    if not redis_url:
        return "memory://"
    return "redis+unix://" + redis_url.removeprefix("unix://") if redis_url.startswith("unix://") else redis_url


def init_app(app: Flask, settings: Settings) -> ReadLimit | None:
    """Call after the blueprints are registered: it wraps their views. Returns the read limit
    (None when limits are off), for a front that answers before Flask to count its reads."""
    guards = Limiter(
        get_remote_address,
        app=app,
        storage_uri=_storage_uri(settings.redis_url),
        storage_options=_STORAGE_OPTIONS,
        strategy="fixed-window",
        headers_enabled=True,
        swallow_errors=False,  # `_guarded` decides what a failure means, and logs it once
        key_prefix="memedroid",
        enabled=settings.rate_limits,
    )
    after, teardown = _take_hooks(app, guards)
    store = Degradation(
        log, ("limiter_degraded", "rate limits cannot be counted"), ("limiter_recovered", "rate limits are counted again")
    )
    not_reads = set()
    for endpoint, view in list(app.view_functions.items()):
        limits = _declared.get(view, [])
        if limits or endpoint in FAIL_CLOSED:
            wrapped: Hook = view
            for setting, key_func, scope in limits:
                rate = getattr(settings, setting)
                limit = (
                    guards.limit(rate, key_func=key_func)
                    if scope is None
                    else guards.shared_limit(rate, scope, key_func=key_func)
                )
                wrapped = limit(wrapped)
            app.view_functions[endpoint] = _guarded(view, wrapped, Hooks(guards, after, teardown, store), endpoint in FAIL_CLOSED)
        if view in _exempt or view in _declared:  # a guarded view is not also a read
            not_reads.add(endpoint)
    if not settings.rate_limits:
        return None
    reads = ReadLimit(settings.read_rate_limit, not_reads)
    reads.init_app(app)
    return reads


def _take_hooks(app: Flask, guards: Limiter) -> tuple[list[Hook], list[Hook]]:
    """flask-limiter hooks every request of the app: a check before it (the views' decorators
    check anyway; it cost ~180 µs a request), headers after it and a context to release at
    teardown. Take them all out; return the last two, for the views it limits to run."""

    def its_own(registry: dict[Any, list[Hook]]) -> list[Hook]:
        """The limiter's hooks (bound methods, or partials of its class's), out of `registry`."""
        hooks = [
            hook
            for hook in registry.get(None, [])
            if getattr(hook, "__self__", None) is guards or guards in getattr(hook, "args", ())
        ]
        registry[None] = [hook for hook in registry.get(None, []) if hook not in hooks]
        return hooks

    its_own(app.before_request_funcs)
    return its_own(app.after_request_funcs), its_own(app.teardown_request_funcs)


@dataclass(frozen=True)
class Hooks:
    """flask-limiter's hooks, to run for the views it limits, and its store's health. (The
    limiter is held here: the views it wraps refer to it only weakly.)"""

    limiter: Limiter
    after: list[Hook]
    teardown: list[Hook]
    store: Degradation  # whether the limiter's store counts hits


def _guarded(view: Hook, limited: Hook, hooks: Hooks, fail_closed: bool) -> Hook:
    """A view behind its limits (`limited`: the view wrapped by flask-limiter), with the
    limiter's hooks for its requests only. When the store cannot count a hit, sign-in
    (`fail_closed`) refuses to run unlimited (503); anything else runs unlimited."""

    def finish(response: Response) -> Response:
        ours = response.headers.get("Retry-After")  # a 503's own: when the store or the backlog may take it
        try:
            for hook in hooks.after:
                response = hook(response)
        except StorageError as exc:  # its headers need the store too
            hooks.store.failed(exc)
        if response.status_code != 429:  # flask-limiter sets Retry-After on every answer: its window's end
            response.headers.pop("Retry-After", None)
            if ours is not None:
                response.headers["Retry-After"] = ours
        for hook in hooks.teardown:
            hook(None)
        return response

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        after_this_request(finish)  # also after a refusal or an error: their answers get the headers too
        try:
            answer = limited(*args, **kwargs)  # the limits are counted first, then the view runs
        except StorageError as exc:
            hooks.store.failed(exc)
            if fail_closed:
                raise ServiceUnavailable("sign-in is temporarily unavailable; try again shortly", retry_after=10) from None
            return view(*args, **kwargs)
        hooks.store.worked()
        return answer

    return guarded


class FixedWindow:
    """Hits per key in fixed windows of `seconds`, counted in this process's memory.

    Only the current window's counts are kept, for at most `max_keys` keys: beyond that a new
    key goes uncounted until the window turns (memory stays bounded whatever a flood of
    addresses does; the limit is there to stop one address flooding)."""

    def __init__(self, amount: int, seconds: int, max_keys: int = 100_000) -> None:
        self.amount, self.seconds, self.max_keys = amount, seconds, max_keys
        self.window = -1
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def hit(self, key: str) -> tuple[int, int]:
        """Count a hit; return how many hits are left in this window (negative: over the
        limit) and when the window ends (epoch seconds)."""
        window = int(time.time()) // self.seconds
        with self.lock:
            if window != self.window:
                self.window, self.counts = window, {}
            count = self.counts.get(key, 0) + 1
            if count > 1 or len(self.counts) < self.max_keys:
                self.counts[key] = count
        return self.amount - count, (window + 1) * self.seconds


class ReadLimit:
    """Every other request: a fixed window per client address in this process's memory, with
    flask-limiter's `X-RateLimit-*` headers and a 429 problem when it is spent."""

    def __init__(self, rate: str, skip: set[str]) -> None:
        item = parse(rate)
        self.rate = str(item)
        self.window = FixedWindow(item.amount, item.get_expiry())
        self.skip = skip

    def init_app(self, app: Flask) -> None:
        app.before_request(self.check)
        app.after_request(self.headers)

    def check(self) -> None:
        request = current()
        if request.endpoint is None or request.endpoint in self.skip:
            return
        left, reset = self.window.hit(request.remote_addr or "")
        request.read_limit = max(0, left), reset
        if left < 0:
            raise TooManyRequests(self.rate, retry_after=max(1, reset - int(time.time())))

    def allows(self, address: str) -> bool:
        """Count a read by `address` that Flask never sees; whether it is within the limit."""
        return self.window.hit(address)[0] >= 0

    def headers(self, response: Response) -> Response:
        """The client's reads left, unless the answer may go to others from a shared cache."""
        request = current()
        read_limit = request.read_limit
        if read_limit is not None and not request.shared:
            response.headers["X-RateLimit-Limit"] = str(self.window.amount)
            response.headers["X-RateLimit-Remaining"] = str(read_limit[0])
            response.headers["X-RateLimit-Reset"] = str(read_limit[1])
        return response
