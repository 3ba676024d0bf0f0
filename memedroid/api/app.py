"""The Flask application factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from memedroid.api import (
    ApiRequest,
    Services,
    auth,
    caching,
    comments,
    health,
    limits,
    moderation,
    openapi,
    posts,
    problems,
    requestlog,
    tags,
    tokens,
    users,
    validation,
    web,
)
from memedroid.api.multipart import Uploads
from memedroid.cache import FeedCache
from memedroid.db import Database
from memedroid.repositories.counters import Counters
from memedroid.services.accounts import Accounts
from memedroid.services.comments import Comments
from memedroid.services.feeds import Feeds
from memedroid.services.health import Health
from memedroid.services.jobs import JobQueue
from memedroid.services.moderation import Moderation
from memedroid.services.posts import Posts
from memedroid.services.publishing import Publishing
from memedroid.settings import Settings
from memedroid.storage import open_storage
from memedroid.transport import Pipeline


class Api(Flask):
    """Flask, with MemeDroid's request class, and without a check no view of ours needs."""

    request_class = ApiRequest

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask asks, for every hook and view of every request, whether it is a coroutine
        (~1 µs each); none of ours is (tests/test_app.py holds that)."""
        return func


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> Flask:
    """Build the API. Nothing connects here: each process opens its pool on first use.

    `pipeline` is the media pipeline's transport; without one, uploads stay pending for the
    sweep and `/readyz` answers for the database alone."""
    if settings is None:
        settings = Settings.from_env()
        settings.warn_if_generated_secret()
    app = Api("memedroid", static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_request_bytes, JSON_SORT_KEYS=False)
    app.json = validation.JSONProvider(app)

    db = Database(settings)
    storage = open_storage(settings).ensure()
    cache = FeedCache.from_settings(settings)
    counters = Counters(cache.cache)
    jobs = JobQueue(db, pipeline.jobs if pipeline else None)
    comments_service = Comments(db, cache, counters)
    services = Services(
        settings=settings,
        db=db,
        accounts=Accounts(db, settings),
        publishing=Publishing(db, storage, settings, jobs, cache),
        posts=Posts(db, cache, counters, storage, settings),
        feeds=Feeds(db, cache, counters, settings.media_url, settings.shows_reposts),
        comments=comments_service,
        moderation=Moderation(db, cache, comments_service, storage, settings.media_url, settings.shows_reposts),
        health=Health(settings, cache.cache, storage, pipeline),
    )
    app.extensions["memedroid"] = services
    app.extensions["uploads"] = Uploads(settings)

    requestlog.init_app(app)
    problems.init_app(app)
    app.before_request(validation.reject_nul_in_url)
    tokens.init_app(app, settings, services.accounts)
    blueprints = (
        health.bp,
        openapi.bp,
        auth.bp,
        users.bp,
        posts.bp,
        comments.bp,
        tags.bp,
        moderation.bp,
        moderation.public,
        moderation.reporting,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if not settings.production and storage.media_folder() is not None:  # else a web server (or the store) does
        app.register_blueprint(posts.files)
    web.init_app(app, settings.media_url)
    reads = limits.init_app(app, settings)
    caching.init_app(app, settings, cache.local, reads)  # its hook runs before the limiter's and the log's (which logs a 304)
    if settings.trusted_proxies:  # the client's address (rate limits, logs) from X-Forwarded-For
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    return app
