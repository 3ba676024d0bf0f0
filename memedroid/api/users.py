"""`/api/v1/users`: the signed-in account and public profiles."""

from __future__ import annotations

from flask import Blueprint

from memedroid.api import PREFIX, services, tokens

bp = Blueprint("users", __name__, url_prefix=f"{PREFIX}/users")


@bp.get("/me")
@tokens.authenticated()
def me() -> dict[str, object]:
    return services().accounts.get(tokens.current_user_id()).private()


@bp.get("/<username>")
def profile(username: str) -> dict[str, object]:
    """A public profile with the totals of the user's completed posts and their likes."""
    return services().accounts.profile(username).to_json()
