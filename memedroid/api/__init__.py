"""The HTTP layer: the app factory, the gunicorn server, and blueprints that parse and
validate, call one service, and serialize. It imports services and the shared ground; nothing
below it imports it."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import cast

from flask import Request, current_app, request

from memedroid.db import Database
from memedroid.repositories.users import ANONYMOUS, Viewer
from memedroid.services.accounts import Accounts
from memedroid.services.comments import Comments
from memedroid.services.feeds import Feeds
from memedroid.services.health import Health
from memedroid.services.moderation import Moderation
from memedroid.services.posts import Posts
from memedroid.services.publishing import Publishing
from memedroid.settings import Settings

PREFIX = "/api/v1"


@dataclass(frozen=True)
class Services:
    """The per-app services, kept in `app.extensions["memedroid"]` (and the pools, closed with it)."""

    settings: Settings
    db: Database
    accounts: Accounts
    publishing: Publishing
    posts: Posts
    feeds: Feeds
    comments: Comments
    moderation: Moderation
    health: Health

    def close(self) -> None:
        """Close the pools (the app's, and the probes' own)."""
        self.db.close()
        self.health.close()


def services() -> Services:
    return cast(Services, current_app.extensions["memedroid"])


class ApiRequest(Request):
    """Flask's request, with what the request hooks and views learn about it on the way."""

    started: float = 0.0  # time.perf_counter() when the first hook ran
    request_id: str = ""
    request_id_token: contextvars.Token[str | None] | None = None
    user_id: int | None = None  # the signed-in caller, once a view has checked the token
    viewer: Viewer = ANONYMOUS  # the caller as the token's session check read it
    token_checked: bool = False  # its access token was verified, its session read (tokens.check_access_token)
    read_limit: tuple[int, int] | None = None  # reads left in this window, and when it ends (epoch)
    shared: bool = False  # the answer is the same for everyone: a shared cache may keep it

    @property
    def caller(self) -> int:
        """The signed-in caller of a view behind `tokens.authenticated`."""
        if self.user_id is None:
            raise RuntimeError("no signed-in caller: the view is not behind tokens.authenticated")
        return self.user_id

    @property
    def moderator(self) -> bool:
        """Whether the signed-in caller (if any) is a moderator or an admin."""
        return self.viewer.moderator


def current() -> ApiRequest:
    """The request being served, unwrapped: its attributes cost no proxy lookup each."""
    return cast(ApiRequest, request._get_current_object())  # type: ignore[attr-defined]
