"""Trust and safety over HTTP: `/api/v1/mod/...` for moderators (401 without a token, 403 for
anyone else), reporting posts and comments (signed in, rate limited), and the public
`/api/v1/modlog`, which does not name the moderators."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response

from memedroid.api import PREFIX, current, services, tokens
from memedroid.api.limits import current_user, limited
from memedroid.api.posts import DEFAULT_PAGE, MAX_PAGE
from memedroid.api.validation import Check, flag, invalid, json_object, length, query, query_number, string_fields
from memedroid.repositories.moderation import ROLES
from memedroid.repositories.reports import REASONS
from memedroid.services.moderation import RESOLUTIONS, Ban, Target

bp = Blueprint("moderation", __name__, url_prefix=f"{PREFIX}/mod")
public = Blueprint("modlog", __name__, url_prefix=f"{PREFIX}/modlog")
reporting = Blueprint("reports", __name__, url_prefix=PREFIX)

MAX_REASON = 500
MAX_NOTE = 1000


@bp.post("/posts/<int:post_id>/remove")
@bp.post("/comments/<int:comment_id>/remove")
@tokens.moderator()
def remove(**target: int) -> Response:
    services().moderation.change(_target(target), current().viewer, _reason(), remove=True)
    return Response(status=204)


@bp.post("/posts/<int:post_id>/restore")
@bp.post("/comments/<int:comment_id>/restore")
@tokens.moderator()
def restore(**target: int) -> Response:
    services().moderation.change(_target(target), current().viewer, _reason(), remove=False)
    return Response(status=204)


@bp.post("/posts/<int:post_id>/mark-nsfw")
@tokens.moderator()
def mark_nsfw(post_id: int) -> Response:
    services().moderation.mark_nsfw(post_id, current().viewer, _reason(), nsfw=True)
    return Response(status=204)


@bp.post("/posts/<int:post_id>/unmark-nsfw")
@tokens.moderator()
def unmark_nsfw(post_id: int) -> Response:
    services().moderation.mark_nsfw(post_id, current().viewer, _reason(), nsfw=False)
    return Response(status=204)


@bp.post("/posts/<int:post_id>/ban-media")
@tokens.moderator()
def ban_media(post_id: int) -> Response:
    services().moderation.ban_media(post_id, current().viewer, _reason())
    return Response(status=204)


@bp.post("/users/<username>/ban")
@tokens.moderator()
def ban(username: str) -> Response:
    """Ban an account: `{reason, until?, hide_content?}`."""
    fields, hide = _ban_fields(json_object(), (), reason=length(1, MAX_REASON))
    services().moderation.ban(username, current().viewer, Ban(fields["reason"], _time(fields.get("until")), hide))
    return Response(status=204)


@bp.post("/users/<username>/unban")
@tokens.moderator()
def unban(username: str) -> Response:
    services().moderation.unban(username, current().viewer, _reason())
    return Response(status=204)


@bp.put("/users/<username>/role")
@tokens.admin()
def grant_role(username: str) -> dict[str, object]:
    """Give an account a role (admins only; logged, but not in the public log)."""
    fields = string_fields(json_object(), role=_one_of(ROLES))
    return services().moderation.grant_role(username, fields["role"], current().viewer)


@bp.get("/reports")
@tokens.moderator()
def reports() -> dict[str, object]:
    """The report queue, grouped by target, oldest first: `?status=open|resolved`."""
    return services().moderation.queue(*_reports_page())


@bp.get("/reports/posts/<int:post_id>/notes")
@bp.get("/reports/comments/<int:comment_id>/notes")
@tokens.moderator()
def notes(**target: int) -> dict[str, object]:
    """The notes of a target's reports, newest first: `?status=open|resolved`."""
    return services().moderation.notes(_target(target), *_reports_page())


def _reports_page() -> tuple[bool, str | None, int]:
    """Whether the resolved reports are asked for (`?status=open|resolved`), the cursor, the limit."""
    params = query({"status", "cursor", "limit"})
    status = params.get("status", "open")
    if status not in ("open", "resolved"):
        invalid("status", "must be one of open, resolved")
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=params)
    return status == "resolved", params.get("cursor"), int(limit)


@bp.post("/reports/posts/<int:post_id>/resolve")
@bp.post("/reports/comments/<int:comment_id>/resolve")
@tokens.moderator()
def resolve(**target: int) -> Response:
    """Resolve every open report on a target: `{action, note?}`, and for `ban_author` the
    ban's `until?` and `hide_content?`."""
    fields, hide = _ban_fields(json_object(), {"note"}, action=_one_of(RESOLUTIONS), note=length(0, MAX_REASON))
    note = fields.get("note", "")
    ban = Ban(until=_time(fields.get("until")), hide_content=hide)
    services().moderation.resolve(_target(target), current().viewer, fields["action"], note, ban)
    return Response(status=204)


@bp.get("/log")
@tokens.moderator()
def log() -> dict[str, object]:
    return _log_page(moderators=True)


@public.get("")
def modlog() -> dict[str, object]:
    return _log_page(moderators=False)


@reporting.post("/posts/<int:post_id>/reports")
@reporting.post("/comments/<int:comment_id>/reports")
@limited("report_rate_limit", key_func=current_user)
@tokens.authenticated()
def report(**target: int) -> tuple[dict[str, Any], int]:
    """Report a post or a comment to the moderators: `{reason, note?}`."""
    fields = string_fields(json_object(), optional={"note"}, reason=_one_of(REASONS), note=length(0, MAX_NOTE))
    moderation = services().moderation
    return moderation.report(current().caller, _target(target), fields["reason"], fields.get("note", "")), 201


def _target(ids: dict[str, int]) -> Target:
    """The target a route names: `{"post_id": 7}` is `("post", 7)`."""
    ((name, target_id),) = ids.items()
    return name.removesuffix("_id"), target_id


def _reason() -> str:
    return string_fields(json_object(), reason=length(1, MAX_REASON))["reason"]


def _one_of(choices: tuple[str, ...]) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _ban_fields(data: dict[str, Any], optional: Collection[str], **checks: Check) -> tuple[dict[str, str], bool]:
    """A body that may carry a ban's `until` (ISO 8601, in the future) and `hide_content`: its
    string fields, and whether to hide content."""
    fields = {name: value for name, value in data.items() if name != "hide_content"}
    return string_fields(fields, optional={"until", *optional}, until=_future, **checks), flag(data, "hide_content", False)


def _future(value: str) -> str | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        return "must be an ISO 8601 time with its UTC offset"
    return None if when > datetime.now(UTC) else "must be in the future"


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _log_page(moderators: bool) -> dict[str, object]:
    params = query({"cursor", "limit"})
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=params)
    return services().moderation.log_page(params.get("cursor"), int(limit), moderators)
