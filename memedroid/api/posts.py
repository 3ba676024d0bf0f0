"""`/api/v1/posts`: upload (202 Accepted) and read posts; `/media/...` files in development."""

from __future__ import annotations

from typing import cast

import orjson
from flask import Blueprint, Response, current_app, jsonify, send_from_directory, url_for

from memedroid.api import PREFIX, current, services, tokens
from memedroid.api.caching import page_response
from memedroid.api.limits import current_user, limited
from memedroid.api.multipart import Uploads, read_upload
from memedroid.api.validation import invalid, query, query_number
from memedroid.cache import tag_of
from memedroid.errors import ValidationError
from memedroid.repositories.users import Viewer
from memedroid.services.feeds import SORTS, WINDOWS, Listing
from memedroid.services.publishing import normalise_tags
from memedroid.storage import IMMUTABLE, MEDIA_TYPES

bp = Blueprint("posts", __name__, url_prefix=f"{PREFIX}/posts")
files = Blueprint("media_files", __name__)

MAX_WAIT_SECONDS = 30
DEFAULT_PAGE = 20
MAX_PAGE = 100


@bp.post("")
@limited("upload_rate_limit", key_func=current_user)
@tokens.authenticated()
def create() -> tuple[dict[str, object], int, dict[str, str]]:
    """Stream the upload into storage and answer 202: the pipeline takes it from there."""
    request = current()
    with cast(Uploads, current_app.extensions["uploads"]).admitted(request.caller):
        post = services().publishing.upload(request.caller, read_upload, request.request_id)
    return post, 202, {"Location": url_for("posts.show", post_id=post["id"])}


@bp.get("")
def index() -> Response:
    """The feed of completed posts: newest first, or `sort=hot`, or `sort=top` within a
    `window`; `tag` or `author` narrow it."""
    viewer = optional_viewer()
    params = query({"cursor", "limit", "tag", "author", "sort", "window"})
    tag, author = params.get("tag"), params.get("author")
    if tag is not None and author is not None:
        raise ValidationError({"tag": "use either tag or author, not both"})
    if tag is not None:
        tag = normalise_tags([tag])[0] if tag.strip() else invalid("tag", "must not be empty")
    sort, window = params.get("sort", "new"), params.get("window")
    if sort not in SORTS:
        invalid("sort", f"must be one of {', '.join(SORTS)}")
    if window is not None and (sort != "top" or window not in WINDOWS):
        invalid("window", f"must be one of {', '.join(WINDOWS)}, with sort=top")
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=params)
    listing = Listing(sort, window, tag, author)
    return page_response(services().feeds.page(listing, params.get("cursor"), int(limit), viewer))


@bp.get("/<int:post_id>")
def show(post_id: int) -> Response:
    """A post (a view is counted). Its view count moves with every read, so its ETag leaves
    the count out and is weak: a client revalidating gets a 304 while nothing else changed."""
    viewer = optional_viewer()
    wait = query_number("wait", 0, MAX_WAIT_SECONDS, default=0)
    post = services().posts.show(post_id, viewer, wait)
    response = jsonify(post)
    response.set_etag(tag_of(orjson.dumps({**post, "view_count": None})), weak=True)
    return response


@bp.get("/<int:post_id>/similar")
def similar(post_id: int) -> dict[str, object]:
    """Posts whose media is the same as this one's or a near-duplicate (repost detection)."""
    viewer = optional_viewer()
    limit = query_number("limit", 1, MAX_PAGE, default=DEFAULT_PAGE, integer=True, params=query({"limit"}))
    return services().posts.similar(post_id, viewer, int(limit))


@bp.delete("/<int:post_id>")
@tokens.authenticated()
def delete(post_id: int) -> Response:
    services().posts.delete(post_id, current().caller)
    return Response(status=204)


@bp.put("/<int:post_id>/like")
@limited("like_rate_limit", key_func=current_user, scope="likes")
@tokens.authenticated()
def like(post_id: int) -> Response:
    services().posts.like(post_id, current().caller, liked=True)
    return Response(status=204)


@bp.delete("/<int:post_id>/like")
@limited("like_rate_limit", key_func=current_user, scope="likes")
@tokens.authenticated()
def unlike(post_id: int) -> Response:
    services().posts.like(post_id, current().caller, liked=False)
    return Response(status=204)


def optional_viewer() -> Viewer:
    """The reader: signed in, or anonymous. Anonymous reads (the hot path) skip the token machinery."""
    request = current()
    if "HTTP_AUTHORIZATION" in request.environ:
        tokens.check_access_token(optional=True)
        request.user_id = tokens.current_user_id_or_none()
    return request.viewer


@files.get("/media/<path:name>")
def media_file(name: str) -> Response:
    """Development only: production serves `storage/media/` from a web server."""
    mimetype = MEDIA_TYPES.get(name[name.rfind(".") :].lower(), "application/octet-stream")
    folder = services().posts.media_folder()
    assert folder is not None  # the route is there only for local files
    response = send_from_directory(folder, name, mimetype=mimetype, max_age=365 * 24 * 3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = IMMUTABLE
    return response
