"""`/api/v1/users`: the signed-in account (its settings and blocks) and public profiles."""

from __future__ import annotations

from flask import Blueprint, Response

from memedroid.api import PREFIX, current, services, tokens
from memedroid.api.posts import DEFAULT_PAGE, MAX_PAGE
from memedroid.api.validation import flag, invalid, json_object, query, query_number

bp = Blueprint("users", __name__, url_prefix=f"{PREFIX}/users")


@bp.get("/me")
@tokens.authenticated()
def me() -> dict[str, object]:
    return services().accounts.get(current().caller).private()


@bp.patch("/me")
@tokens.authenticated()
def settings() -> dict[str, object]:
    """Change the account's settings: `{show_nsfw}` opts in to NSFW posts in listings."""
    data = json_object()
    for name in data.keys() - {"show_nsfw"}:
        invalid(name, "is not a known field")
    return services().accounts.set_show_nsfw(current().caller, flag(data, "show_nsfw")).private()


@bp.get("/me/blocks")
@tokens.authenticated()
def blocks() -> dict[str, object]:
    """The accounts the caller blocks."""
    params = query({"cursor", "limit"})
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=params)
    return services().accounts.blocks(current().caller, params.get("cursor"), int(limit))


@bp.put("/<username>/block")
@tokens.authenticated()
def block(username: str) -> Response:
    """Stop seeing an account's posts and comments anywhere (idempotent)."""
    services().accounts.block(current().caller, username, blocked=True)
    return Response(status=204)


@bp.delete("/<username>/block")
@tokens.authenticated()
def unblock(username: str) -> Response:
    services().accounts.block(current().caller, username, blocked=False)
    return Response(status=204)


@bp.get("/<username>")
def profile(username: str) -> dict[str, object]:
    """A public profile with the totals of the user's completed posts and their likes."""
    return services().accounts.profile(username).to_json()
