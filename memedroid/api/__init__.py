"""The HTTP layer: the app factory, the gunicorn server, and blueprints that parse and
validate, call one service, and serialize. It imports services and the shared ground; nothing
below it imports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app

from memedroid.db import Database
from memedroid.services.accounts import Accounts
from memedroid.services.feeds import Feeds
from memedroid.services.health import Health
from memedroid.services.posts import Posts
from memedroid.services.publishing import Publishing
from memedroid.settings import Settings

PREFIX = "/api/v1"


@dataclass(frozen=True)
class Services:
    """The per-app services, kept in `app.extensions["memedroid"]` (and the pool, closed with it)."""

    settings: Settings
    db: Database
    accounts: Accounts
    publishing: Publishing
    posts: Posts
    feeds: Feeds
    health: Health


def services() -> Services:
    return cast(Services, current_app.extensions["memedroid"])
