"""HTTP caching: who may keep an answer, and for how long, and conditional requests.

- An anonymous read of the API that succeeded (`GET`/`HEAD`, 200) is the same for every
  reader: `Cache-Control: public, max-age=HTTP_MAX_AGE, stale-while-revalidate=…`, so that a
  proxy or CDN in front micro-caches it.
- A read with `Authorization` carries the reader's own view (`liked_by_me`, their NSFW choice,
  their blocks): `private, no-cache`, never in a shared cache. Both say `Vary: Authorization`.
- Anything else (writes, 202s, errors, the probes) is `no-store`. A view that sets its own
  `Cache-Control` (the media files, the web client) keeps it.
- Every cacheable answer has an `ETag`, and `If-None-Match` gets `304 Not Modified` without a
  body. Pages served from the cache carry the tag made when they were rendered (`cache.Page`),
  so a hit costs no hashing; any other body is hashed here. The tags are strong but a post's,
  which leaves out its ever-moving view count and so is weak (`posts.show`).
"""

from __future__ import annotations

from flask import Flask, Response

from memedroid.api import PREFIX, current
from memedroid.cache import Page, tag_of
from memedroid.settings import Settings

PRIVATE = "private, no-cache"
NO_STORE = "no-store"


def page_response(page: Page) -> Response:
    """A JSON page with its tag as the ETag; a 304 when the client has it already (the page
    is then not even wrapped)."""
    etag = f'"{page.tag}"'
    asked = current().environ.get("HTTP_IF_NONE_MATCH")
    if asked is not None and matches(asked, etag):
        return NotModified(etag)
    return Response(page.body, mimetype="application/json", headers=[("ETag", etag)])


class NotModified(Response):
    """A 304: no body, and of the 200's headers those a cache needs (RFC 9110, 15.4.5); the
    policy adds `Cache-Control` and `Vary`."""

    default_mimetype = None

    def __init__(self, etag: str) -> None:
        super().__init__(status=304, headers=[("ETag", etag)])


def matches(asked: str, etag: str) -> bool:
    """Whether an `If-None-Match` value names `etag` (compared weakly, as RFC 9110 says)."""
    if asked.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in asked.split(","))


def init_app(app: Flask, settings: Settings) -> None:
    """Register the policy. Its hook runs before the read limiter's, which leaves its
    per-client `X-RateLimit-*` headers off an answer a shared cache may keep (`shared`)."""
    public = f"public, max-age={settings.http_max_age}, stale-while-revalidate={settings.http_stale_seconds}"
    api = PREFIX + "/"

    def policy(response: Response) -> Response:
        headers = response.headers
        if "Cache-Control" in headers:
            return response
        request = current()
        environ = request.environ
        unchanged = type(response) is NotModified
        if (
            not (response.status_code == 200 or unchanged)
            or environ["REQUEST_METHOD"] not in ("GET", "HEAD")
            or not request.path.startswith(api)
        ):
            headers.add("Cache-Control", NO_STORE)
            return response
        if not unchanged:
            etag = headers.get("ETag")
            if etag is None:
                etag = f'"{tag_of(response.get_data())}"'
                headers.add("ETag", etag)
            asked = environ.get("HTTP_IF_NONE_MATCH")
            if asked is not None and matches(asked, etag):
                response = NotModified(etag)
        request.shared = "HTTP_AUTHORIZATION" not in environ
        response.headers.add("Cache-Control", public if request.shared else PRIVATE)
        response.headers.add("Vary", "Authorization")
        return response

    app.after_request(policy)
