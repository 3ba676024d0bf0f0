"""`/api/v1/posts`: upload (202 Accepted) and read posts; `/media/...` files in development."""

from __future__ import annotations

from flask import Blueprint, Response, g, request, send_from_directory, url_for
from flask_jwt_extended import verify_jwt_in_request

from memedroid.api import PREFIX, services, tokens
from memedroid.api.multipart import read_upload
from memedroid.errors import ValidationError
from memedroid.publishing import check_caption, normalise_tags

bp = Blueprint("posts", __name__, url_prefix=f"{PREFIX}/posts")
files = Blueprint("media_files", __name__)

MAX_WAIT_SECONDS = 30


@bp.post("")
@tokens.authenticated()
def create() -> tuple[dict[str, object], int, dict[str, str]]:
    publishing = services().publishing
    publishing.check_capacity()
    form = read_upload(publishing.storage, services().settings.max_upload_bytes)
    try:
        captions = form.fields.get("caption", [])
        if len(captions) > 1:
            raise ValidationError({"caption": "send at most one caption"})
        caption = check_caption(captions[0] if captions else "")
        tags = normalise_tags(form.fields.get("tags", []))
        unknown = form.fields.keys() - {"caption", "tags"}
        if unknown:
            raise ValidationError({name: "is not a known field" for name in unknown})
    except BaseException:
        form.discard()
        raise
    assert form.upload is not None
    post = publishing.publish(g.user_id, form.upload, caption, tags, g.get("request_id"))
    location = url_for("posts.show", post_id=post.id)
    return post.to_json(services().settings.media_url), 202, {"Location": location}


@bp.get("/<int:post_id>")
def show(post_id: int) -> dict[str, object]:
    verify_jwt_in_request(optional=True)
    viewer = tokens.current_user_id_or_none()
    g.user_id = viewer
    wait = _wait_seconds()
    publishing = services().publishing
    post = publishing.wait(post_id, viewer, wait) if wait else publishing.get(post_id, viewer)
    return post.to_json(services().settings.media_url)


def _wait_seconds() -> float:
    raw = request.args.get("wait")
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise ValidationError({"wait": f"must be a number of seconds from 0 to {MAX_WAIT_SECONDS}"})
    return seconds


@files.get("/media/<path:name>")
def media_file(name: str) -> Response:
    """Development only: production serves `storage/media/` from a web server."""
    response = send_from_directory(services().publishing.storage.media, name, max_age=365 * 24 * 3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
