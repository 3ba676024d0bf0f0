"""The web client: one small HTML page for every client route, and the client's modules and
styles (memedroid/web/) under content-hashed names, cached for good."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, request

from memedroid.api import services

FOLDER = Path(__file__).resolve().parent.parent / "web"
STATIC = "/static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])\./([\w.-]+)\2""")
FOREVER = "public, max-age=31536000, immutable"

bp = Blueprint("web", __name__)

# Where the client's router answers (and "/"): the page is the same, its script picks the view.
ROUTES = (
    "/new",
    "/top",
    "/t/<tag>",
    "/u/<username>",
    "/p/<int:post_id>",
    "/upload",
    "/signin",
    "/register",
    "/settings",
    "/mod",
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    mimetype: str
    etag: str


class Assets:
    """The client's files, read once: each is served as `name.<hash>.ext`, and the imports
    between modules name those files, so a change to one module renames it and every module
    that imports it (a cached copy can never mix versions)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.urls: dict[str, str] = {}  # "app.js" -> "/static/app.1a2b3c4d5e.js"
        self.files: dict[str, Asset] = {}  # "app.1a2b3c4d5e.js" -> its bytes
        for path in sorted(folder.iterdir()):
            if path.suffix in TYPES:
                self._add(path.name, ())

    def _add(self, name: str, importers: tuple[str, ...]) -> str:
        if name in self.urls:
            return self.urls[name]
        if name in importers or not (self.folder / name).is_file():
            raise ValueError(f"web client: {' -> '.join((*importers, name))} is a cycle or a missing file")
        text = (self.folder / name).read_text()
        if name.endswith(".js"):
            text = IMPORT.sub(lambda m: f"{m[1]}{m[2]}{self._add(m[3], (*importers, name))}{m[2]}", text)
        body = text.encode()
        digest = hashlib.sha256(body).hexdigest()[:12]
        stem, ext = name.rsplit(".", 1)
        hashed = f"{stem}.{digest}.{ext}"
        self.files[hashed] = Asset(body, TYPES["." + ext], digest)
        self.urls[name] = f"{STATIC}/{hashed}"
        return self.urls[name]

    @functools.cached_property
    def html(self) -> bytes:
        """The page every client route answers with."""
        modules = "\n".join(
            f'  <link rel="modulepreload" href="{url}">' for name, url in sorted(self.urls.items()) if name.endswith(".js")
        )
        template = Template((self.folder / "index.html").read_text())
        return template.substitute(
            css=self.urls["app.css"], js=self.urls["app.js"], icon=self.urls["icon.svg"], modules=modules
        ).encode()


def policy(media_url: str) -> str:
    """The page's Content-Security-Policy: nothing inline, nothing evaluated, media from here
    and MEDIA_URL's origin only."""
    parts = urlsplit(media_url)
    media = f" {parts.scheme}://{parts.netloc}" if parts.netloc else ""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' blob: data:{media}",
            f"media-src 'self' blob:{media}",
            "connect-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def init_app(app: Flask) -> None:
    """Read the client's files once, and serve them and the page."""
    app.extensions["memedroid.web"] = Assets(FOLDER)
    app.register_blueprint(bp)


def _assets() -> Assets:
    return cast(Assets, current_app.extensions["memedroid.web"])


@bp.get("/", endpoint="page")
def page(**_route: object) -> Response:
    response = Response(_assets().html, mimetype="text/html")
    response.headers.update(
        {
            "Cache-Control": "no-cache",
            "Content-Security-Policy": policy(services().settings.media_url),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        }
    )
    return response


for _route in ROUTES:
    bp.add_url_rule(_route, endpoint="page", view_func=page, methods=["GET"])


@bp.get(f"{STATIC}/<name>")
def static(name: str) -> Response:
    asset = _assets().files.get(name) or abort(404)
    response = Response(asset.body, mimetype=asset.mimetype)
    response.headers.update({"Cache-Control": FOREVER, "X-Content-Type-Options": "nosniff"})
    response.set_etag(asset.etag)
    response.make_conditional(request)
    return response
