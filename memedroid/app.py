"""The Flask application factory."""

from __future__ import annotations

from flask import Flask

from memedroid.accounts import Accounts
from memedroid.api import Services, auth, health, problems, requestlog, tokens, users
from memedroid.db import Database
from memedroid.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API. Nothing connects here: each process opens its pool on first use."""
    if settings is None:
        settings = Settings.from_env()
        settings.warn_if_generated_secret()
    app = Flask("memedroid")
    app.config.update(MAX_CONTENT_LENGTH=settings.max_request_bytes, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    db = Database(settings)
    accounts = Accounts(db, settings)
    app.extensions["memedroid"] = Services(settings=settings, db=db, accounts=accounts)

    requestlog.init_app(app)
    problems.init_app(app)
    tokens.init_app(app, settings, accounts)
    for blueprint in (health.bp, auth.bp, users.bp):
        app.register_blueprint(blueprint)
    return app
