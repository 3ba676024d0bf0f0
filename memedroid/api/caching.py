"""HTTP caching: who may keep an answer, and for how long, and conditional requests.

- An anonymous read of the API that succeeded (`GET`/`HEAD`, 200) is the same for every
  reader: `Cache-Control: public, max-age=HTTP_MAX_AGE, stale-while-revalidate=…`, so that a
  proxy or CDN in front micro-caches it.
- A read with `Authorization` carries the reader's own view (`liked_by_me`, their NSFW choice,
  their blocks): `private, no-cache`, never in a shared cache. Both say `Vary: Authorization`.
- An anonymous read answered 404 (a post deleted or removed since, its thread, `/similar`) is
  `public, max-age=HTTP_MAX_AGE` as well, without `stale-while-revalidate`: a shared cache
  keeps it briefly, in place of the 200 it held. Said `no-store`, it never replaced the stale
  200, which nginx (`proxy_cache_use_stale updating`) went on serving to every reader who came
  while another refreshed it: for as long as people kept reading.
- Anything else (writes, 202s, other errors, the probes) is `no-store`. A view that sets its
  own `Cache-Control` (the media files, the web client) keeps it.
- Every cacheable answer has an `ETag`, and `If-None-Match` gets `304 Not Modified` without a
  body. Pages served from the cache carry the tag made when they were rendered (`cache.Page`),
  so a hit costs no hashing; any other body is hashed here. The tags are strong but a post's,
  which leaves out its ever-moving view count and so is weak (`posts.show`).
- A revalidation of a page every reader shares (a feed, a thread) is answered in front of
  Flask (`Revalidation`), from the page cache alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response

from memedroid.api import PREFIX, current, requestlog
from memedroid.api.limits import ReadLimit
from memedroid.cache import LocalCache, Page, tag_of
from memedroid.logs import request_id_var, sane_request_id
from memedroid.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PRIVATE = "private, no-cache"
NO_STORE = "no-store"
SHOWN = "memedroid.page"  # in the WSGI environ: the shared page an answer showed (key, route, path)


def page_response(page: Page) -> Response:
    """A JSON page with its tag as the ETag; a 304 when the client has it already (the page
    is then not even wrapped)."""
    request = current()
    environ = request.environ
    if page.key:  # a page every reader of this URL gets (one made for a signed-in reader has none)
        environ[SHOWN] = (page.key, request.url_rule.rule if request.url_rule else "unmatched", request.path)
    etag = f'"{page.tag}"'
    asked = environ.get("HTTP_IF_NONE_MATCH")
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


class Revalidation:
    """The app's WSGI front: a revalidation of a shared page this process holds is answered
    before Flask builds a request for it.

    When the view answers an anonymous read with a page every reader shares (`page_response`),
    the front learns which page that URL shows. A later anonymous `GET`/`HEAD` of the URL whose
    `If-None-Match` names the page's tag, while the page cache still holds the page, gets the
    304 the view would give: the same page cache, the same freshness, the same headers. It
    costs a dictionary lookup instead of a request: no request object, no routing, no hooks
    (a tenth of what `/healthz` costs in-process; bench/README.md). The read limit still
    counts it (one over the limit goes on to the view, for its 429), and it has its request
    id, access line and metric. Anything else goes on to the app unchanged."""

    MAX_URLS = 10_000  # learned URLs kept; beyond that they are forgotten all at once

    def __init__(self, app: WSGIApplication, pages: LocalCache, reads: ReadLimit | None, public: str) -> None:
        self.app = app
        self.pages = pages
        self.reads = reads
        self.shared = [("Cache-Control", public), ("Vary", "Authorization")]
        self.urls: dict[str, tuple[str, str, str]] = {}  # path?query -> the page's key, route and path

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD") or "HTTP_AUTHORIZATION" in environ:
            return self.app(environ, start_response)
        url = f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
        shown = self.urls.get(url)
        asked = environ.get("HTTP_IF_NONE_MATCH")
        if shown is not None and asked is not None and (page := self.pages.peek(shown[0])) is not None:
            etag = f'"{page.tag}"'
            if matches(asked, etag) and (self.reads is None or self.reads.allows(environ.get("REMOTE_ADDR") or "")):
                return self.not_modified(environ, start_response, etag, shown, started)
        body = self.app(environ, start_response)
        learned = environ.get(SHOWN)
        if learned is not None:
            if len(self.urls) >= self.MAX_URLS:
                self.urls.clear()
            self.urls[url] = learned
        return body

    def not_modified(
        self, environ: WSGIEnvironment, start_response: StartResponse, etag: str, shown: tuple[str, str, str], started: float
    ) -> Iterable[bytes]:
        request_id = sane_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = request_id_var.set(request_id)
        try:
            start_response("304 NOT MODIFIED", [("ETag", etag), *self.shared, (requestlog.HEADER, request_id)])
            _key, route, path = shown
            requestlog.record(route, environ["REQUEST_METHOD"], path, 304, time.perf_counter() - started)
        finally:
            request_id_var.reset(token)
        return []


def init_app(app: Flask, settings: Settings, pages: LocalCache, reads: ReadLimit | None) -> None:
    """Register the policy, and put `Revalidation` in front of the app (`pages`: the page
    cache of this process; `reads`: the read limit). The policy's hook runs before the read
    limiter's, which leaves its per-client `X-RateLimit-*` headers off an answer a shared
    cache may keep (`shared`)."""
    public = f"public, max-age={settings.http_max_age}, stale-while-revalidate={settings.http_stale_seconds}"
    gone = f"public, max-age={settings.http_max_age}"
    api = PREFIX + "/"

    def policy(response: Response) -> Response:
        headers = response.headers
        if "Cache-Control" in headers:
            return response
        request = current()
        environ = request.environ
        unchanged = type(response) is NotModified
        read = environ["REQUEST_METHOD"] in ("GET", "HEAD") and request.path.startswith(api)
        if read and response.status_code == 404 and "HTTP_AUTHORIZATION" not in environ:
            headers.add("Cache-Control", gone)
            headers.add("Vary", "Authorization")
            return response
        if not (response.status_code == 200 or unchanged) or not read:
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
    app.wsgi_app = Revalidation(app.wsgi_app, pages, reads, public)  # type: ignore[method-assign]
