"""HTTP caching: who may keep an answer, and for how long, and conditional requests.

- An anonymous read of the API that succeeded (`GET`/`HEAD`, 200) is the same for every
  reader: `Cache-Control: public, max-age=HTTP_MAX_AGE, stale-while-revalidate=…`, so that a
  proxy or CDN in front micro-caches it.
- A read with `Authorization` carries the reader's own view (`liked_by_me`, their NSFW choice,
  their blocks): `private, no-cache`, never in a shared cache. Both say `Vary: Authorization`.
- Anything else (writes, 202s, errors, the probes) is `no-store`. A view that sets its own
  `Cache-Control` (the media files, the web client) keeps it.
- Every cacheable answer has a strong `ETag`, and `If-None-Match` gets `304 Not Modified`
  without a body. Pages served from the cache carry the tag made when they were rendered
  (`cache.Page`), so a hit costs no hashing; any other body is hashed here.
"""

from __future__ import annotations

from flask import Flask, Response

from memedroid.api import PREFIX, current
from memedroid.cache import Page, tag_of
from memedroid.settings import Settings

PRIVATE = "private, no-cache"
NO_STORE = "no-store"


def page_response(page: Page) -> Response:
    """A JSON page with its tag as the ETag."""
    response = Response(page.body, mimetype="application/json")
    response.headers["ETag"] = f'"{page.tag}"'
    return response


def init_app(app: Flask, settings: Settings) -> None:
    public = f"public, max-age={settings.http_max_age}, stale-while-revalidate={settings.http_stale_seconds}"
    api = PREFIX + "/"

    def policy(response: Response) -> Response:
        headers = response.headers
        if "Cache-Control" in headers:
            return response
        request = current()
        environ = request.environ
        if response.status_code != 200 or environ["REQUEST_METHOD"] not in ("GET", "HEAD") or not request.path.startswith(api):
            headers["Cache-Control"] = NO_STORE
            return response
        headers["Cache-Control"] = PRIVATE if "HTTP_AUTHORIZATION" in environ else public
        headers["Vary"] = "Authorization"
        if "ETag" not in headers:
            headers["ETag"] = f'"{tag_of(response.get_data())}"'
        if "HTTP_IF_NONE_MATCH" in environ:
            response.make_conditional(environ)
        return response

    app.after_request(policy)
