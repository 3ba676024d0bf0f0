"""The OpenAPI 3.1 document (`GET /openapi.json`) and the Swagger UI page that browses it
(`GET /docs`, its assets bundled from PyPI: no CDN).

The document is written here, next to the code it describes; tests/test_openapi.py fails when
a Flask route is missing from it (or it lists one Flask does not have), and runs schemathesis
against the live app to check every response against it.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

from flask import Blueprint, Response, abort, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from werkzeug.http import HTTP_STATUS_CODES

from memedroid.api import PREFIX, web
from memedroid.api.limits import exempt
from memedroid.repositories.moderation import ROLES
from memedroid.repositories.reports import REASONS
from memedroid.services import comments, feeds, passwords
from memedroid.services.accounts import EMAIL, USERNAME
from memedroid.services.moderation import RESOLUTIONS
from memedroid.services.publishing import MAX_CAPTION, MAX_TAGS, TAG
from memedroid.sniff import ACCEPTED

bp = Blueprint("docs", __name__)

PROBLEM = "application/problem+json"
SWAGGER_ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"}
TIMESTAMP = {"type": "string", "format": "date-time", "examples": ["2026-11-29T16:41:32.120000+00:00"]}


def anchored(pattern: re.Pattern[str]) -> str:
    """A Python `fullmatch` pattern as a JSON Schema (ECMA-262) `pattern`."""
    return f"^{pattern.pattern}$"


TAG_PATTERN = anchored(TAG)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    """A JSON object schema with exactly these properties (all required unless listed)."""
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


NEXT_CURSOR = {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."}
REMOVED = obj(at=TIMESTAMP, reason={"type": "string", "maxLength": 500})  # by moderators: when, and why

SCHEMAS: dict[str, Any] = {
    "Problem": {
        **obj(
            ["type", "title", "status", "instance"],
            type={"type": "string", "examples": ["about:blank"]},
            title={"type": "string", "examples": ["Not Found"]},
            status={"type": "integer", "minimum": 400, "maximum": 599},
            detail={"type": "string", "examples": ["no post 42"]},
            instance={"type": "string", "description": "The request's path.", "examples": ["/api/v1/posts/42"]},
            request_id={"type": ["string", "null"], "description": "Also in the X-Request-ID header and every log line."},
            errors={
                "type": "array",
                "description": "Validation problems, one per field (400 only).",
                "items": obj(field={"type": "string"}, message={"type": "string"}),
            },
            detected={"type": "string", "description": "What an unsupported upload looks like (415 only)."},
            field={"type": "string", "description": "The field that conflicts (409 only)."},
        ),
        "description": "RFC 9457 problem details; every error has this shape.",
    },
    "User": obj(
        id={"type": "integer", "examples": [1]},
        username={"type": "string", "examples": ["alice"]},
        created_at=TIMESTAMP,
    ),
    "Account": {
        "allOf": [
            ref("User"),
            obj(
                email={"type": "string", "format": "email", "examples": ["alice@example.com"]},
                show_nsfw={"type": "boolean", "description": "Opted in to NSFW posts in listings."},
                role={"enum": ["user", "moderator", "admin"], "description": "Moderators and admins moderate."},
            ),
        ],
        "description": "The signed-in user's own account.",
    },
    "Profile": {
        "allOf": [
            ref("User"),
            obj(
                post_count={"type": "integer", "minimum": 0, "description": "Completed posts."},
                like_count={"type": "integer", "minimum": 0, "description": "Likes on those posts."},
                comment_count={"type": "integer", "minimum": 0, "description": "Comments, not the deleted ones."},
            ),
        ]
    },
    "Tokens": obj(
        ["access_token", "token_type", "expires_in"],
        access_token={"type": "string", "description": "Send as `Authorization: Bearer <token>`."},
        refresh_token={"type": "string", "description": "Login only: exchange it at /auth/refresh."},
        token_type={"const": "Bearer"},
        expires_in={"type": "integer", "description": "Seconds the access token lives.", "examples": [900]},
    ),
    "Media": obj(
        kind={"enum": ["image", "animated", "video"]},
        url={"type": "string", "examples": ["/media/ab/cd/abcd0123.jpg"]},
        thumbnail_url={"type": "string", "examples": ["/media/ab/cd/abcd0123.thumb.jpg"]},
        width={"type": "integer"},
        height={"type": "integer"},
        duration_s={"type": ["number", "null"], "description": "Animated and video media."},
        mime={"type": "string", "examples": ["image/jpeg", "video/mp4"]},
        blurhash={"type": ["string", "null"], "description": "A placeholder to paint while the file loads."},
        loop={"type": "boolean", "description": "Play in a loop, like a GIF."},
    ),
    "Post": obj(
        ["id", "status", "error", "caption", "tags", "author", "created_at", "media", "like_count", "view_count", "repost_of"],
        id={"type": "integer", "examples": [42]},
        status={
            "enum": ["pending", "processing", "completed", "failed"],
            "description": "Uploads are processed in the background; only the author sees a post before it completes.",
        },
        error={"type": ["string", "null"], "description": "Why processing failed, for people."},
        caption={"type": "string", "maxLength": MAX_CAPTION},
        tags={"type": "array", "items": {"type": "string", "pattern": TAG_PATTERN}, "examples": [["cats", "funny"]]},
        author=obj(id={"type": "integer"}, username={"type": "string"}),
        created_at=TIMESTAMP,
        media={"oneOf": [ref("Media"), {"type": "null"}], "description": "Null until completed."},
        like_count={"type": "integer", "minimum": 0},
        view_count={"type": "integer", "minimum": 0},
        comment_count={"type": "integer", "minimum": 0, "description": "Comments, not the deleted ones."},
        repost_of={
            "oneOf": [
                obj(
                    post_id={
                        "type": ["integer", "null"],
                        "examples": [7],
                        "description": "Null when the original is hidden from this reader (NSFW to one who did not "
                        "opt in, or by an account the reader blocks): it is a repost, of a post not named.",
                    },
                    author={"type": ["string", "null"], "examples": ["bob"]},
                    distance={
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 64,
                        "description": "Bits the perceptual hashes differ in; 0 for the same file.",
                    },
                ),
                {"type": "null"},
            ],
            "description": "The earliest older post of the same or a near-duplicate media (null with REPOSTS=allow).",
        },
        removed={
            "oneOf": [REMOVED, {"type": "null"}],
            "description": "Set when moderators removed the post: only its author and moderators see it then.",
        },
        nsfw={
            "type": "boolean",
            "description": "Not safe for work: listed only for readers who opted in; blur it (its blurhash) until tapped.",
        },
        liked_by_me={"type": "boolean", "description": "Only when the request carries a token."},
    ),
    "SimilarPosts": obj(
        items={
            "type": "array",
            "items": {
                "allOf": [ref("Post"), obj(distance={"type": "integer", "minimum": 0, "maximum": 64})],
            },
            "description": "Nearest first (0: the same file), then oldest.",
        },
    ),
    "Page": obj(
        items={"type": "array", "items": ref("Post")},
        next_cursor=NEXT_CURSOR,
    ),
    "Comment": obj(
        ["id", "post_id", "parent_id", "depth", "deleted", "body", "author", "created_at", "like_count", "reply_count"],
        id={"type": "integer", "examples": [7]},
        post_id={"type": "integer"},
        parent_id={"type": ["integer", "null"], "description": "The comment it replies to; null at the top level."},
        depth={"type": "integer", "minimum": 1, "description": "1 for a top-level comment, its parent's + 1 for a reply."},
        deleted={"type": "boolean", "description": "Deleted by its author: it keeps its place, without body or author."},
        removed={
            "oneOf": [REMOVED, {"type": "null"}],
            "description": "Set when moderators removed it: it keeps its place, its body and author shown only to "
            "its author and moderators.",
        },
        body={
            "type": ["string", "null"],
            "maxLength": 5000,
            "description": "Plain text: render it as text, never as HTML. Null when deleted (or removed).",
        },
        author={"oneOf": [obj(id={"type": "integer"}, username={"type": "string"}), {"type": "null"}]},
        created_at=TIMESTAMP,
        like_count={"type": "integer", "minimum": 0},
        reply_count={"type": "integer", "minimum": 0, "description": "Direct replies, deleted ones included."},
        liked_by_me={"type": "boolean", "description": "Only when the request carries a token."},
    ),
    "ThreadComment": {
        "allOf": [
            ref("Comment"),
            obj(
                ["replies", "replies_cursor"],
                replies={
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/ThreadComment"},
                    "description": "Its first replies (to depth 3 of the page).",
                },
                replies_cursor={
                    "type": ["string", "null"],
                    "description": "When it has more replies than shown: `cursor` for GET /comments/{id}/replies.",
                },
            ),
        ]
    },
    "Thread": obj(
        items={"type": "array", "items": ref("ThreadComment")},
        next_cursor=NEXT_CURSOR,
    ),
    "Comments": obj(
        items={"type": "array", "items": ref("Comment")},
        next_cursor=NEXT_CURSOR,
    ),
    "Tags": obj(items={"type": "array", "items": obj(name={"type": "string"}, post_count={"type": "integer"})}),
    "ModLog": obj(
        items={
            "type": "array",
            "items": obj(
                ["id", "action", "target", "reason", "created_at"],
                id={"type": "integer"},
                action={"type": "string", "examples": ["remove_post", "restore_post", "grant_moderator"]},
                target=obj(type={"enum": ["user", "post", "comment", "media"]}, id={"type": "integer"}),
                reason={"type": "string"},
                created_at=TIMESTAMP,
                moderator={
                    "type": ["string", "null"],
                    "description": "Who did it (null: the command line); only in `/mod/log`, for moderators.",
                },
            ),
        },
        next_cursor=NEXT_CURSOR,
    ),
    "Report": obj(
        id={"type": "integer"},
        target=ref("Target"),
        reason={"enum": list(REASONS)},
        note={"type": "string", "maxLength": 1000},
    ),
    "Target": obj(type={"enum": ["post", "comment"]}, id={"type": "integer"}),
    "ReportQueue": obj(
        items={
            "type": "array",
            "items": obj(
                target=ref("Target"),
                report_count={"type": "integer", "minimum": 1},
                reasons={"type": "array", "items": {"enum": list(REASONS)}},
                note_count={"type": "integer", "minimum": 0, "description": "Reports on it that came with a note."},
                notes={
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 3,
                    "description": "The latest notes, newest first; `.../notes` pages them all.",
                },
                first_reported_at=TIMESTAMP,
                last_reported_at=TIMESTAMP,
                resolution={
                    "oneOf": [
                        obj(action={"enum": list(RESOLUTIONS)}, at=TIMESTAMP, by={"type": ["string", "null"]}),
                        {"type": "null"},
                    ],
                    "description": "How it was resolved (null while open).",
                },
                content={
                    "oneOf": [ref("Post"), ref("Comment"), {"type": "null"}],
                    "description": "The target as moderators see it; null when it was deleted.",
                },
            ),
            "description": "One entry per reported target (per resolution, once resolved), oldest first.",
        },
        next_cursor=NEXT_CURSOR,
    ),
    "ReportNotes": obj(
        items={
            "type": "array",
            "items": obj(
                id={"type": "integer", "description": "The report's."},
                reason={"enum": list(REASONS)},
                note={"type": "string", "maxLength": 1000},
                created_at=TIMESTAMP,
            ),
        },
        next_cursor=NEXT_CURSOR,
    ),
    "Blocks": obj(
        items={
            "type": "array",
            "items": obj(id={"type": "integer"}, username={"type": "string"}, blocked_at=TIMESTAMP),
        },
        next_cursor=NEXT_CURSOR,
    ),
    "Status": obj(status={"type": "string", "examples": ["ok"]}),
}

HEADERS = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "string"}},
    "Location": {"description": "Where the new resource lives.", "schema": {"type": "string"}},
    "ETag": {
        "description": "The answer's validator: send it back as `If-None-Match` to get a 304 while nothing changed.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`public, max-age=HTTP_MAX_AGE, stale-while-revalidate=HTTP_STALE_SECONDS` for an anonymous "
        "read, `private, no-cache` for a signed-in one, `no-store` for anything else.",
        "schema": {"type": "string"},
    },
}
CACHED = {name: {"$ref": f"#/components/headers/{name}"} for name in ("ETag", "Cache-Control")}
NOT_MODIFIED = {"description": "Not modified: the `If-None-Match` ETag is still current (no body).", "headers": CACHED}


def problem(status: int, description: str, detail: str, retry_after: bool = False, **more: Any) -> dict[str, Any]:
    """A problem+json response, `{status: response}`, with an example body."""
    example = {"type": "about:blank", "title": HTTP_STATUS_CODES[status], "status": status, "detail": detail,
               "instance": "/api/v1/posts", "request_id": "9f2c4e0b7d1a4c39b1f3e6a2d5c8b7e4", **more}  # fmt: skip
    response: dict[str, Any] = {"description": description, "content": {PROBLEM: {"schema": ref("Problem"), "example": example}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return {str(status): response}


# The problems many operations share: components/responses/<name>, keyed by status.
SHARED = {
    "BadRequest": problem(
        400,
        "The body or a parameter is invalid; `errors` names each field.",
        "invalid field: limit",
        errors=[{"field": "limit", "message": "must be an integer from 1 to 100"}],
    ),
    "Unauthorized": problem(401, "The token is missing, malformed, expired or revoked.", "the token has expired"),
    "Forbidden": problem(
        403,
        "Only moderators and admins may do this (or the account is banned); what only admins may do: act on a "
        "moderator's or an admin's content or account, undo another moderator's action, grant roles.",
        "only moderators may do this",
    ),
    "Banned": problem(403, "The account is banned.", "this account is banned until 2026-12-24T00:00:00+00:00: spam"),
    "NotFound": problem(404, "No such resource (or not visible to the caller).", "no post 42"),
    "UnsupportedMediaType": problem(
        415, "The body's type is not the one expected.", "expected a JSON body with Content-Type: application/json"
    ),
    "TooManyRequests": problem(429, "Over the rate limit.", "5 per 1 minute", retry_after=True),
    "Unavailable": problem(
        503,
        "A dependency (the database, storage, the pipeline's backlog) cannot serve now.",
        "the database is unavailable, try again shortly",
        retry_after=True,
    ),
}
RESPONSES = {name: response for name, shared in SHARED.items() for response in shared.values()} | {"NotModified": NOT_MODIFIED}
LOCATION = {"Location": {"$ref": "#/components/headers/Location"}}


def answers(*names: str) -> dict[str, Any]:
    """References to the shared problem responses, by name."""
    return {status: {"$ref": f"#/components/responses/{name}"} for name in names for status in SHARED[name]}


def answer(status: str, description: str, media_type: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    """A successful response, `{status: response}`."""
    return {status: {"description": description, "content": {media_type: {"schema": schema}}, **more}}


def json_ok(schema: dict[str, Any], status: str = "200", description: str = "OK.", **more: Any) -> dict[str, Any]:
    return answer(status, description, "application/json", schema, **more)


TEXT = {"type": "string"}


def operation(
    summary: str,
    ok: dict[str, dict[str, Any]],
    errors: tuple[str, ...] = (),
    auth: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    tag: str = "posts",
) -> dict[str, Any]:
    """One operation. `auth`: None (public), "required", "optional", "moderator" (a token of a
    moderator or an admin), "admin" or "cookie" (the web client's refresh cookie and CSRF header). Every route but the probes may answer 429 (rate limits) and 503
    (the database is down)."""
    found: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {**ok, **answers(*errors)}}
    if auth:
        scheme: list[dict[str, list[str]]] = [{"refresh_cookie": []}] if auth == "cookie" else [{"bearer": []}]
        found["security"] = [*scheme, {}] if auth == "optional" else scheme
        denied = answers("Unauthorized", "Forbidden" if auth in ("moderator", "admin") else "Banned")
        found["responses"].update({status: denied[status] for status in denied.keys() - found["responses"].keys()})
    if parameters:
        found["parameters"] = parameters
    if body:
        found["requestBody"] = body
    return found


def api(summary: str, ok: dict[str, dict[str, Any]], errors: tuple[str, ...] = (), **kwargs: Any) -> dict[str, Any]:
    """An /api/v1 operation: rate limited and backed by the database."""
    return operation(summary, ok, (*errors, "TooManyRequests", "Unavailable"), **kwargs)


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


POST_ID = path("post_id", {"type": "integer", "minimum": 0}, "The post's id.")
COMMENT_ID = path("comment_id", {"type": "integer", "minimum": 0}, "The comment's id.")
CURSOR = query("cursor", {"type": "string"}, "`next_cursor` of the previous page.")
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "Page size.")
THREAD_QUERY = [
    query("sort", {"type": "string", "enum": list(comments.SORTS), "default": "top"}, "The order, at every depth."),
    query("cursor", {"type": "string"}, "`next_cursor` of the previous page, or a `replies_cursor` (same sort)."),
    LIMIT,
]
LIMIT_TAGS = query("limit", {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}, "How many tags.")
NO_CONTENT = {"204": {"description": "Done."}}
UNTIL = {"type": "string", "format": "date-time", "description": "When the ban ends (in the future, with its offset)."}
HIDE_CONTENT = {"type": "boolean", "default": False, "description": "Remove the account's posts and comments meanwhile."}
USERNAME_PATH = path("username", {"type": "string"}, "Compared case-insensitively.")
TARGET_IDS = {"post": POST_ID, "comment": COMMENT_ID}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body of exactly `schema`'s properties."""
    return {"required": True, "content": {"application/json": {"schema": {**schema, "additionalProperties": False}}}}


REASON_TEXT = {"type": "string", "minLength": 1, "maxLength": 500, "examples": ["spam"]}
REASON = json_body(obj(["reason"], reason=REASON_TEXT))


CREDENTIALS = obj(
    username={"type": "string", "pattern": anchored(USERNAME), "examples": ["alice"]},
    email={"type": "string", "pattern": anchored(EMAIL), "maxLength": 254, "examples": ["alice@example.com"]},
    password={
        "type": "string",
        "minLength": passwords.MIN_CHARACTERS,
        "maxLength": passwords.MAX_BYTES,
        "description": f"At least {passwords.MIN_CHARACTERS} characters and at most {passwords.MAX_BYTES} bytes in UTF-8; no NUL.",
        "examples": ["correct horse battery"],
    },
)
CREDENTIALS["additionalProperties"] = False
LOGIN = json_body(
    obj(
        login={"type": "string", "minLength": 1, "maxLength": 254, "examples": ["alice"]},
        password={"type": "string", "minLength": 1, "maxLength": 1024},
    )
)
CSRF = {
    "name": "X-CSRF-TOKEN",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "The `csrf_refresh_token` cookie's value (double submit).",
}


def web_pages() -> dict[str, Any]:
    """The web client's routes: each answers the same small page, whose script picks the view."""
    kinds = {"int": {"type": "integer", "minimum": 0}}
    found = {}
    for route in ("/", *web.ROUTES):
        names = re.findall(r"<(?:(\w+):)?(\w+)>", route)
        found[re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)] = {
            "get": operation(
                "A page of the web client.",
                answer("200", "HTML (the client's view is drawn by its script).", "text/html", TEXT),
                ("NotFound",) if names else (),
                parameters=[path(name, kinds.get(kind, {"type": "string"}), "As in the address.") for kind, name in names],
                tag="web",
            )
        }
    return found


def paths() -> dict[str, Any]:
    accepted = ", ".join(sorted(ACCEPTED))
    return {
        "/healthz": {"get": operation("Liveness: the process serves.", json_ok(ref("Status")), tag="operations")},
        "/readyz": {
            "get": operation("Readiness: the database answers.", json_ok(ref("Status")), ("Unavailable",), tag="operations")
        },
        "/metrics": {
            "get": operation(
                "Prometheus metrics, summed over every process (see the README's metric table).",
                answer("200", "Prometheus text format.", "text/plain", TEXT),
                tag="operations",
            )
        },
        "/openapi.json": {
            "get": operation("This document.", json_ok({"type": "object"}), tag="operations"),
        },
        "/docs": {
            "get": operation(
                "Browse this document (Swagger UI).",
                answer("200", "HTML.", "text/html", TEXT),
                tag="operations",
            )
        },
        "/docs/{asset}": {
            "get": operation(
                "The Swagger UI page's own files.",
                answer("200", "A script, style sheet or icon.", "*/*", {}),
                ("NotFound",),
                parameters=[path("asset", {"type": "string"}, "A file name, e.g. swagger-ui.css.")],
                tag="operations",
            )
        },
        f"{PREFIX}/auth/register": {
            "post": api(
                "Create an account.",
                {
                    **json_ok(ref("User"), "201", "Created: the public account.", headers=LOCATION),
                    **problem(
                        409,
                        "The username or email is taken (compared case-insensitively).",
                        "email is already registered",
                        field="email",
                    ),
                },
                ("BadRequest", "UnsupportedMediaType"),
                body={"required": True, "content": {"application/json": {"schema": CREDENTIALS}}},
                tag="auth",
            )
        },
        f"{PREFIX}/auth/login": {
            "post": api(
                "Sign in with a username or email; answers an access and a refresh token.",
                json_ok(ref("Tokens")),
                ("BadRequest", "UnsupportedMediaType", "Unauthorized", "Banned"),
                body=LOGIN,
                tag="auth",
            )
        },
        f"{PREFIX}/auth/refresh": {
            "post": api(
                "Exchange the refresh token (as the Bearer token) for a new access token.",
                json_ok(ref("Tokens")),
                auth="required",
                tag="auth",
            )
        },
        f"{PREFIX}/auth/web/login": {
            "post": api(
                "The web client's sign-in: like /auth/login, but the refresh token is set as an HttpOnly cookie "
                "(`refresh_token_cookie`, sent to /auth/web/ only) beside a readable `csrf_refresh_token` cookie.",
                json_ok(ref("Tokens")),
                ("BadRequest", "UnsupportedMediaType", "Unauthorized", "Banned"),
                body=LOGIN,
                tag="auth",
            )
        },
        f"{PREFIX}/auth/web/refresh": {
            "post": api(
                "A new access token for the web client's refresh cookie; send the `csrf_refresh_token` cookie's "
                "value as the `X-CSRF-TOKEN` header.",
                json_ok(ref("Tokens")),
                auth="cookie",
                parameters=[CSRF],
                tag="auth",
            )
        },
        f"{PREFIX}/auth/web/logout": {
            "post": api(
                "End the web client's session and clear its cookies (`X-CSRF-TOKEN` as for refresh).",
                NO_CONTENT,
                auth="cookie",
                parameters=[CSRF],
                tag="auth",
            )
        },
        f"{PREFIX}/auth/logout": {
            "post": api(
                "Revoke this session: its access and refresh tokens stop working.", NO_CONTENT, auth="required", tag="auth"
            )
        },
        f"{PREFIX}/users/me": {
            "get": api("The signed-in account.", json_ok(ref("Account")), auth="required", tag="users"),
            "patch": api(
                "Change the account's settings: `show_nsfw` opts in to NSFW posts in every listing (or out).",
                json_ok(ref("Account")),
                ("BadRequest", "UnsupportedMediaType"),
                auth="required",
                body=json_body(obj(show_nsfw={"type": "boolean"})),
                tag="users",
            ),
        },
        f"{PREFIX}/users/me/blocks": {
            "get": api(
                "The accounts the caller blocks, in the order of their ids.",
                json_ok(ref("Blocks")),
                ("BadRequest",),
                auth="required",
                parameters=[CURSOR, LIMIT],
                tag="users",
            )
        },
        f"{PREFIX}/users/{{username}}/block": {
            method: api(
                summary,
                NO_CONTENT,
                ("NotFound",) if method == "delete" else ("BadRequest", "NotFound"),
                auth="required",
                parameters=[USERNAME_PATH],
                tag="users",
            )
            for method, summary in (
                ("put", "Block an account: its posts and comments leave every listing the caller reads (idempotent)."),
                ("delete", "Unblock an account (idempotent)."),
            )
        },
        f"{PREFIX}/users/{{username}}": {
            "get": api(
                "A public profile with the totals of the user's completed posts.",
                json_ok(ref("Profile")),
                ("NotFound",),
                parameters=[path("username", {"type": "string"}, "Compared case-insensitively.")],
                tag="users",
            )
        },
        f"{PREFIX}/posts": {
            "post": api(
                "Upload a meme. Answers 202 at once; the media is processed in the background "
                "(poll the post, or GET it with `wait`).",
                {
                    **json_ok(
                        ref("Post"),
                        "202",
                        "Accepted: the post, `pending` (or `completed` when the same bytes were seen before).",
                        headers=LOCATION,
                    ),
                    **problem(408, "The body came too slowly (see BODY_TIMEOUT).", "the body came too slowly: 12 bytes in 11 s"),
                    **problem(413, "The file is over MAX_UPLOAD_BYTES.", "the file is larger than the limit of 52428800 bytes"),
                    **problem(
                        415,
                        f"Not a supported type (accepted: {accepted}); `detected` says what it looks like.",
                        "unsupported file type: detected PDF document; accepted types are JPEG image, PNG image, ...",
                        detected="PDF document",
                    ),
                    **problem(
                        422,
                        "The file is empty, these exact bytes were rejected before (with the reason), or they are "
                        "banned ('this media is banned').",
                        "this file was already rejected: the image is truncated",
                    ),
                    **problem(
                        507, "The server's disk is full; nothing was stored.", "the server has no room for this file right now"
                    ),
                },
                ("BadRequest",),
                auth="required",
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": obj(
                                ["file"],
                                file={"type": "string", "contentMediaType": "application/octet-stream"},
                                caption={"type": "string", "maxLength": MAX_CAPTION},
                                tags={
                                    "type": "string",
                                    "description": f"Comma-separated (or repeat the field); at most {MAX_TAGS} of "
                                    "1 to 32 of a-z, 0-9 and _ (a leading # is dropped).",
                                    "examples": ["cats,funny"],
                                },
                                nsfw={
                                    "type": "string",
                                    "enum": ["true", "false", "1", "0"],
                                    "description": "Mark the post not safe for work.",
                                },
                            ),
                        }
                    },
                },
            ),
            "get": api(
                "The feed of completed posts: newest first (`new`, the default), `hot` (popular now: "
                "likes against age, recomputed every few minutes) or `top` (most liked within `window`); "
                "`tag` or `author` narrows it. A walk through `hot` keeps the ranking it started in "
                "while the server keeps it (at least HOT_RANK_INTERVAL): no post twice, none skipped.",
                json_ok(ref("Page")),
                ("BadRequest", "NotFound"),
                auth="optional",
                parameters=[
                    query("sort", {"type": "string", "enum": list(feeds.SORTS), "default": "new"}, "The order."),
                    query(
                        "window",
                        {"type": "string", "enum": list(feeds.WINDOWS), "default": "day"},
                        "With `sort=top` only: how far back.",
                    ),
                    query("cursor", {"type": "string"}, "`next_cursor` of the previous page (of the same sort)."),
                    LIMIT,
                    query("tag", {"type": "string", "pattern": TAG_PATTERN}, "Only posts with this tag."),
                    query("author", {"type": "string"}, "Only this user's posts (404 for an unknown user)."),
                ],
            ),
        },
        f"{PREFIX}/posts/{{post_id}}": {
            "get": api(
                "One post; counts a view. `wait` long-polls while it is pending or processing.",
                json_ok(ref("Post")),
                ("BadRequest", "NotFound"),
                auth="optional",
                parameters=[
                    POST_ID,
                    query("wait", {"type": "number", "minimum": 0, "maximum": 30}, "Seconds to wait for processing."),
                ],
            ),
            "delete": api(
                "Delete one of your posts (its media goes when no other post shows it).",
                {**NO_CONTENT, **problem(403, "Someone else's post.", "only the author may delete a post")},
                ("NotFound",),
                auth="required",
                parameters=[POST_ID],
            ),
        },
        f"{PREFIX}/posts/{{post_id}}/similar": {
            "get": api(
                "Posts whose media is this post's or a near-duplicate of it (repost detection).",
                json_ok(ref("SimilarPosts")),
                ("BadRequest", "NotFound"),
                auth="optional",
                parameters=[POST_ID, LIMIT],
            ),
        },
        f"{PREFIX}/posts/{{post_id}}/like": {
            method: api(summary, NO_CONTENT, ("NotFound",), auth="required", parameters=[POST_ID])
            for method, summary in (("put", "Like a post (idempotent)."), ("delete", "Unlike a post (idempotent)."))
        },
        f"{PREFIX}/posts/{{post_id}}/comments": {
            "get": api(
                "A post's comments: top-level ones, each with its first replies to depth 3 (more behind each `replies_cursor`).",
                json_ok(ref("Thread")),
                ("BadRequest", "NotFound"),
                auth="optional",
                parameters=[POST_ID, *THREAD_QUERY],
                tag="comments",
            ),
            "post": api(
                "Comment on a completed post, or reply to one of its comments (rate limited per user).",
                json_ok(ref("Comment"), "201", "Created.", headers=LOCATION),
                ("BadRequest", "NotFound", "UnsupportedMediaType"),
                auth="required",
                parameters=[POST_ID],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": obj(
                                ["body"],
                                body={
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": 5000,
                                    "description": "Plain text, 1 to 5,000 characters after trimming; no NUL.",
                                },
                                parent_id={"type": "integer", "minimum": 1, "description": "Reply to this comment."},
                            )
                        }
                    },
                },
                tag="comments",
            ),
        },
        f"{PREFIX}/comments/{{comment_id}}": {
            "get": api("One comment.", json_ok(ref("Comment")), ("NotFound",), parameters=[COMMENT_ID], tag="comments"),
            "delete": api(
                "Delete one of your comments: its body goes, its place and its replies stay (idempotent).",
                {**NO_CONTENT, **problem(403, "Someone else's comment.", "only the author may delete a comment")},
                ("NotFound",),
                auth="required",
                parameters=[COMMENT_ID],
                tag="comments",
            ),
        },
        f"{PREFIX}/comments/{{comment_id}}/replies": {
            "get": api(
                "The replies to a comment, each with its first replies for two more tiers.",
                json_ok(ref("Thread")),
                ("BadRequest", "NotFound"),
                auth="optional",
                parameters=[COMMENT_ID, *THREAD_QUERY],
                tag="comments",
            )
        },
        f"{PREFIX}/comments/{{comment_id}}/like": {
            method: api(summary, NO_CONTENT, ("NotFound",), auth="required", parameters=[COMMENT_ID], tag="comments")
            for method, summary in (("put", "Like a comment (idempotent)."), ("delete", "Unlike a comment (idempotent)."))
        },
        **{
            f"{PREFIX}/mod/{kind}s/{{{kind}_id}}/{action}": {
                "post": api(
                    f"{summary} Logged.",
                    {**NO_CONTENT, **problem(409, conflict, f"{kind} 42 {conflict.split(': ')[1]}")},
                    ("BadRequest", "NotFound", "UnsupportedMediaType"),
                    auth="moderator",
                    parameters=[TARGET_IDS[kind]],
                    body=REASON,
                    tag="moderation",
                )
            }
            for kind in ("post", "comment")
            for action, summary, conflict in (
                (
                    "remove",
                    f"Remove a {kind} from every listing and count for everyone but its author and moderators, "
                    "who see it marked removed with the reason (a comment keeps its place, without body or "
                    "author); files are kept.",
                    "Already removed: is removed already",
                ),
                ("restore", f"Bring a removed {kind} back everywhere.", "Not removed: is not removed"),
            )
        },
        **{
            f"{PREFIX}/mod/posts/{{post_id}}/{action}": {
                "post": api(
                    f"{summary} Logged.",
                    {**NO_CONTENT, **problem(409, "It is so already.", conflict)},
                    ("BadRequest", "NotFound", "UnsupportedMediaType"),
                    auth="moderator",
                    parameters=[POST_ID],
                    body=REASON,
                    tag="moderation",
                )
            }
            for action, summary, conflict in (
                ("mark-nsfw", "Mark a post NSFW: listed only for readers who opted in.", "post 42 is marked NSFW already"),
                ("unmark-nsfw", "Mark a post safe for work again.", "post 42 is not marked NSFW"),
                (
                    "ban-media",
                    "Ban a post's media and remove every post showing it: a later upload of the same bytes is "
                    "refused (422) and one that looks like it (re-encoded, rescaled) fails, 'this media is banned'.",
                    "the media of post 42 is banned already",
                ),
            )
        },
        f"{PREFIX}/mod/users/{{username}}/ban": {
            "post": api(
                "Ban an account: its tokens stop working at once, it cannot sign in until `until` (for good "
                "without), and with `hide_content` its posts and comments are removed while the ban lasts. Logged.",
                {**NO_CONTENT, **problem(409, "Banned already, or a moderator.", "bob is banned already")},
                ("BadRequest", "NotFound", "UnsupportedMediaType"),
                auth="moderator",
                parameters=[USERNAME_PATH],
                body=json_body(obj(["reason"], reason=REASON_TEXT, until=UNTIL, hide_content=HIDE_CONTENT)),
                tag="moderation",
            )
        },
        f"{PREFIX}/mod/users/{{username}}/role": {
            "put": api(
                "Give an account a role (admins only; in the moderators' log, not the public one).",
                {
                    **json_ok(obj(id={"type": "integer"}, username={"type": "string"}, role={"enum": list(ROLES)})),
                    **problem(409, "An admin's own role.", "you may not change your own role"),
                },
                ("BadRequest", "NotFound", "UnsupportedMediaType"),
                auth="admin",
                parameters=[USERNAME_PATH],
                body=json_body(obj(["role"], role={"enum": list(ROLES)})),
                tag="moderation",
            )
        },
        f"{PREFIX}/mod/users/{{username}}/unban": {
            "post": api(
                "Lift a ban, and restore what it hid. Logged.",
                {**NO_CONTENT, **problem(409, "Not banned.", "bob is not banned")},
                ("BadRequest", "NotFound", "UnsupportedMediaType"),
                auth="moderator",
                parameters=[USERNAME_PATH],
                body=REASON,
                tag="moderation",
            )
        },
        f"{PREFIX}/mod/reports": {
            "get": api(
                "The report queue: one entry per reported post or comment, oldest first.",
                json_ok(ref("ReportQueue")),
                ("BadRequest",),
                auth="moderator",
                parameters=[
                    query("status", {"enum": ["open", "resolved"], "default": "open"}, "Open or resolved reports."),
                    CURSOR,
                    LIMIT,
                ],
                tag="moderation",
            )
        },
        **{
            f"{PREFIX}/mod/reports/{kind}s/{{{kind}_id}}/notes": {
                "get": api(
                    f"The notes of the reports on a {kind}, newest first (the queue shows the latest few).",
                    json_ok(ref("ReportNotes")),
                    ("BadRequest", "NotFound"),
                    auth="moderator",
                    parameters=[
                        TARGET_IDS[kind],
                        query("status", {"enum": ["open", "resolved"], "default": "open"}, "Open or resolved reports."),
                        CURSOR,
                        LIMIT,
                    ],
                    tag="moderation",
                )
            }
            for kind in ("post", "comment")
        },
        **{
            f"{PREFIX}/mod/reports/{kind}s/{{{kind}_id}}/resolve": {
                "post": api(
                    f"Resolve every open report on a {kind} with one action, logged: `dismiss`, `remove` it, "
                    "`mark_nsfw` or `ban_media` (posts), `ban_author` (for good unless `until`; `hide_content` as "
                    "for a ban).",
                    {**NO_CONTENT, **problem(409, "The action cannot be done.", f"{kind} 42 is removed already")},
                    ("BadRequest", "NotFound", "UnsupportedMediaType"),
                    auth="moderator",
                    parameters=[TARGET_IDS[kind]],
                    body=json_body(
                        obj(
                            ["action"],
                            action={"enum": list(RESOLUTIONS)},
                            note={"type": "string", "maxLength": 500, "description": "Also the reason of the action."},
                            until=UNTIL,
                            hide_content=HIDE_CONTENT,
                        )
                    ),
                    tag="moderation",
                )
            }
            for kind in ("post", "comment")
        },
        **{
            f"{PREFIX}/{kind}s/{{{kind}_id}}/reports": {
                "post": api(
                    f"Report a {kind} to the moderators (rate limited per user).",
                    {
                        **json_ok(ref("Report"), "201", "Filed."),
                        **problem(
                            409, "An open report of yours is on it already.", f"you have an open report on {kind} 7 already"
                        ),
                    },
                    ("BadRequest", "NotFound", "UnsupportedMediaType"),
                    auth="required",
                    parameters=[TARGET_IDS[kind]],
                    body=json_body(obj(["reason"], reason={"enum": list(REASONS)}, note={"type": "string", "maxLength": 1000})),
                    tag="moderation",
                )
            }
            for kind in ("post", "comment")
        },
        **{
            route: {
                "get": api(
                    summary,
                    json_ok(ref("ModLog")),
                    ("BadRequest",),
                    auth=auth,
                    parameters=[CURSOR, LIMIT],
                    tag="moderation",
                )
            }
            for route, summary, auth in (
                (f"{PREFIX}/mod/log", "The moderation log, newest first, with who did what.", "moderator"),
                (f"{PREFIX}/modlog", "The public moderation log, newest first: what was done and why, not by whom.", None),
            )
        },
        f"{PREFIX}/users/{{username}}/comments": {
            "get": api(
                "A user's comments, newest first (not the deleted ones).",
                json_ok(ref("Comments")),
                ("BadRequest", "NotFound"),
                parameters=[path("username", {"type": "string"}, "Compared case-insensitively."), CURSOR, LIMIT],
                tag="comments",
            )
        },
        f"{PREFIX}/tags": {
            "get": api(
                "Tag autocomplete, with how many completed posts carry each tag.",
                json_ok(ref("Tags")),
                ("BadRequest",),
                parameters=[
                    query("prefix", {"type": "string", "pattern": "^#?[a-z0-9_]{0,32}$"}, "What the tag starts with."),
                    LIMIT_TAGS,
                ],
                tag="tags",
            )
        },
        f"{PREFIX}/tags/trending": {
            "get": api(
                "The tags with the most completed posts in the last 24 hours.",
                json_ok(ref("Tags")),
                ("BadRequest",),
                parameters=[LIMIT_TAGS],
                tag="tags",
            )
        },
        **web_pages(),
        "/static/{name}": {
            "get": operation(
                "The web client's scripts and styles, named by their content's hash: cached for good.",
                {**answer("200", "A module or style sheet.", "*/*", {}), "304": {"description": "Not modified."}},
                ("NotFound",),
                parameters=[path("name", {"type": "string"}, "As the page links it, e.g. app.1a2b3c4d5e6f.js.")],
                tag="web",
            )
        },
        "/media/{name}": {
            "get": operation(
                "Development only (production serves these files from a web server): a processed file, with Range and ETag.",
                {
                    **answer("200", "The file.", "*/*", {}),
                    **answer("206", "The requested range.", "*/*", {}),
                    "304": {"description": "Not modified."},
                    **problem(416, "The range is outside the file.", "The server cannot provide the requested range."),
                },
                ("NotFound",),
                parameters=[path("name", {"type": "string"}, "The path under media/, as in a post's `media.url`.")],
                tag="media",
            )
        },
    }


def revalidated(found: dict[str, Any]) -> dict[str, Any]:
    """Every read of the API answers with an ETag and Cache-Control, and 304 to `If-None-Match`."""
    for route, operations in found.items():
        read = operations.get("get")
        if route.startswith(PREFIX) and read and "200" in read["responses"]:
            read["responses"]["200"]["headers"] = {**read["responses"]["200"].get("headers", {}), **CACHED}
            read["responses"]["304"] = {"$ref": "#/components/responses/NotModified"}
    return found


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MemeDroid API",
            "version": version("memedroid"),
            "summary": "Post memes (images, GIFs, short videos), tag them, like them, scroll feeds.",
            "description": "JSON in and out; every error is `application/problem+json` (RFC 9457). "
            "Send `X-Request-ID` to follow a request through the logs; the response echoes it. "
            "Reads carry an `ETag` (send it back as `If-None-Match` for a 304) and `Cache-Control`: an anonymous read "
            "may be kept by a shared cache for `HTTP_MAX_AGE` seconds, a signed-in one only by its reader.",
        },
        "tags": [
            {"name": name} for name in ("auth", "users", "posts", "comments", "tags", "moderation", "media", "web", "operations")
        ],
        "paths": revalidated(paths()),
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "headers": HEADERS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The access token from /auth/login (the refresh token for /auth/refresh only).",
                },
                "refresh_cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "refresh_token_cookie",
                    "description": "The web client's refresh token, set by /auth/web/login.",
                },
            },
        },
    }


_DOCUMENT = document()

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>MemeDroid API</title>
  <link rel="icon" href="/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""
INIT = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", deepLinking: true});\n'


@bp.get("/openapi.json")
@exempt
def openapi() -> dict[str, Any]:
    return _DOCUMENT


@bp.get("/docs")
@exempt
def docs() -> Response:
    response = Response(PAGE, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    return response


@bp.get("/docs/<asset>")
@exempt
def docs_asset(asset: str) -> Response:
    if asset == "init.js":  # our own script: the page's policy allows no inline scripts
        return Response(INIT, mimetype="text/javascript")
    if asset not in SWAGGER_ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, asset, max_age=24 * 3600)
