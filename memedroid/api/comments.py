"""Comments: `/api/v1/posts/{id}/comments` (a post's thread, and commenting) and
`/api/v1/comments/{id}` (one comment, its replies, its like, its deletion)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, url_for

from memedroid.api import PREFIX, current, services, tokens
from memedroid.api.caching import page_response
from memedroid.api.limits import current_user, limited
from memedroid.api.posts import DEFAULT_PAGE, MAX_PAGE, optional_viewer
from memedroid.api.validation import invalid, json_object, query, query_number, text_problem
from memedroid.errors import ValidationError
from memedroid.services.comments import SORTS

bp = Blueprint("comments", __name__, url_prefix=PREFIX)

MAX_BODY = 5000


@bp.post("/posts/<int:post_id>/comments")
@limited("comment_rate_limit", key_func=current_user)
@tokens.authenticated()
def create(post_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Comment on a post, or reply to one of its comments with `parent_id`."""
    body, parent_id = _new_comment(json_object())
    comment = services().comments.add(post_id, current().caller, body, parent_id)
    return comment, 201, {"Location": url_for("comments.show", comment_id=comment["id"])}


@bp.get("/posts/<int:post_id>/comments")
def thread(post_id: int) -> Response:
    """The post's top-level comments, each with its first replies to depth 3."""
    return _thread(post_id, None)


@bp.get("/comments/<int:comment_id>")
def show(comment_id: int) -> dict[str, Any]:
    viewer = optional_viewer()
    return services().comments.get(comment_id, viewer)


@bp.get("/comments/<int:comment_id>/replies")
def replies(comment_id: int) -> Response:
    """The replies to a comment, each with its first replies for two more tiers."""
    return _thread(None, comment_id)


@bp.delete("/comments/<int:comment_id>")
@tokens.authenticated()
def delete(comment_id: int) -> Response:
    services().comments.delete(comment_id, current().caller)
    return Response(status=204)


@bp.put("/comments/<int:comment_id>/like")
@limited("like_rate_limit", key_func=current_user, scope="likes")
@tokens.authenticated()
def like(comment_id: int) -> Response:
    services().comments.like(comment_id, current().caller, liked=True)
    return Response(status=204)


@bp.delete("/comments/<int:comment_id>/like")
@limited("like_rate_limit", key_func=current_user, scope="likes")
@tokens.authenticated()
def unlike(comment_id: int) -> Response:
    services().comments.like(comment_id, current().caller, liked=False)
    return Response(status=204)


@bp.get("/users/<username>/comments")
def by_author(username: str) -> dict[str, Any]:
    """A user's comments, newest first."""
    params = query({"cursor", "limit"})
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=params)
    return services().comments.by_author(username, params.get("cursor"), int(limit), optional_viewer())


def _thread(post_id: int | None, parent_id: int | None) -> Response:
    viewer = optional_viewer()
    params = query({"sort", "cursor", "limit"})
    sort = params.get("sort", "top")
    if sort not in SORTS:
        invalid("sort", f"must be one of {', '.join(SORTS)}")
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=params)
    return page_response(services().comments.thread(post_id, parent_id, sort, params.get("cursor"), int(limit), viewer))


def _new_comment(data: dict[str, Any]) -> tuple[str, int | None]:
    """The body (trimmed) and the parent of a new comment; a 400 naming each field that is wrong."""
    errors = {name: "is not a known field" for name in data.keys() - {"body", "parent_id"}}
    body, parent_id = data.get("body"), data.get("parent_id")
    if not isinstance(body, str):
        errors["body"] = "is required" if body is None else "must be a string"
    elif (problem := text_problem(body)) is not None:
        errors["body"] = problem
    elif not 1 <= len(body := body.strip()) <= MAX_BODY:
        errors["body"] = f"must be 1 to {MAX_BODY} characters after trimming"
    if parent_id is not None and (not isinstance(parent_id, int) or isinstance(parent_id, bool) or not 0 < parent_id < 2**63):
        errors["parent_id"] = "must be the id of a comment on this post"
    if errors:
        raise ValidationError(errors)
    return str(body), parent_id
