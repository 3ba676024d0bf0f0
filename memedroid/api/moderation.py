"""`/api/v1/mod/...` for moderators (401 without a token, 403 for anyone else), and the public
`/api/v1/modlog`, which does not name the moderators."""

from __future__ import annotations

from flask import Blueprint, Response

from memedroid.api import PREFIX, current, services, tokens
from memedroid.api.posts import DEFAULT_PAGE, MAX_PAGE
from memedroid.api.validation import json_object, length, query, query_number, string_fields

bp = Blueprint("moderation", __name__, url_prefix=f"{PREFIX}/mod")
public = Blueprint("modlog", __name__, url_prefix=f"{PREFIX}/modlog")

MAX_REASON = 500


@bp.post("/posts/<int:post_id>/remove")
@tokens.moderator()
def remove_post(post_id: int) -> Response:
    services().moderation.remove_post(post_id, current().caller, _reason())
    return Response(status=204)


@bp.post("/posts/<int:post_id>/restore")
@tokens.moderator()
def restore_post(post_id: int) -> Response:
    services().moderation.restore_post(post_id, current().caller, _reason())
    return Response(status=204)


@bp.get("/log")
@tokens.moderator()
def log() -> dict[str, object]:
    return _log_page(moderators=True)


@public.get("")
def modlog() -> dict[str, object]:
    return _log_page(moderators=False)


def _reason() -> str:
    return string_fields(json_object(), reason=length(1, MAX_REASON))["reason"]


def _log_page(moderators: bool) -> dict[str, object]:
    params = query({"cursor", "limit"})
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=params)
    return services().moderation.log_page(params.get("cursor"), int(limit), moderators)
