"""The web client: one small HTML page for every client route (for an anonymous reader's feed,
with its first screen: see prerender), and the client's modules and styles (memedroid/web/)
under content-hashed names, cached for good."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import cast
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, request

from memedroid.api import services
from memedroid.api.limits import exempt
from memedroid.api.prerender import FirstPage
from memedroid.errors import MemeDroidError
from memedroid.repositories.users import ANONYMOUS
from memedroid.services.feeds import WINDOWS, Listing
from memedroid.services.publishing import normalise_tags
from memedroid.storage import IMMUTABLE

FOLDER = Path(__file__).resolve().parent.parent / "web"
STATIC = "/static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])\./([\w.-]+)\2""")
FEED_PAGE = 10  # posts in a page of the client's feeds (feed.js)
SIGNED_OUT = '<a href="/signin">Sign in</a><a href="/register" class="button">Join</a>'  # main.js's header
CSRF_COOKIE = "csrf_refresh_token"  # set with a web session: its reader gets pages of their own

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
    that imports it (a cached copy can never mix versions). The page preloads what `main.js`
    imports up front; the views it imports when first shown (`import("./post.js")`) load then."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.urls: dict[str, str] = {}  # "main.js" -> "/static/main.1a2b3c4d5e.js"
        self.files: dict[str, Asset] = {}  # "main.1a2b3c4d5e.js" -> its bytes
        self.imports: dict[str, list[str]] = {}  # "main.js" -> the modules it imports up front
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
            self.imports[name] = [m[3] for m in IMPORT.finditer(text) if "(" not in m[1]]
            text = IMPORT.sub(lambda m: f"{m[1]}{m[2]}{self._add(m[3], (*importers, name))}{m[2]}", text)
        body = text.encode()
        digest = hashlib.sha256(body).hexdigest()[:12]
        stem, ext = name.rsplit(".", 1)
        hashed = f"{stem}.{digest}.{ext}"
        self.files[hashed] = Asset(body, TYPES["." + ext], digest)
        self.urls[name] = f"{STATIC}/{hashed}"
        return self.urls[name]

    def upfront(self, name: str = "main.js") -> list[str]:
        """`name` and every module it imports up front, directly or not."""
        found = [name]
        for module in found:
            found += [imported for imported in self.imports[module] if imported not in found]
        return found

    @functools.cached_property
    def template(self) -> Template:
        """The page every client route answers with, its assets named."""
        names = {"boot": self.urls["boot.js"], "icon": self.urls["icon.svg"]}
        return Template(Template((self.folder / "index.html").read_text()).safe_substitute(names))

    @functools.cached_property
    def style(self) -> str:
        return (self.folder / "app.css").read_text()

    @functools.cached_property
    def style_hash(self) -> str:
        """The stylesheet's hash, as a Content-Security-Policy source allowing it inline."""
        return "'sha256-" + base64.b64encode(hashlib.sha256(self.style.encode()).digest()).decode() + "'"

    def render(self, first: FirstPage | None) -> str:
        """The page. Under a first screen drawn on the server (see prerender) the stylesheet is
        inline and no module is fetched beside it: nothing may delay its meme (boot.js loads
        the modules once it has painted). Elsewhere the page links the stylesheet and preloads
        the modules."""
        if first is not None:
            head = f"<style>{self.style}</style>\n  {first.head()}"
            return self.template.substitute(head=head, nav=SIGNED_OUT, main=first.main())
        links = [f'<link rel="stylesheet" href="{self.urls["app.css"]}">']
        links += [f'<link rel="modulepreload" href="{self.urls[name]}">' for name in self.upfront()]
        return self.template.substitute(head="\n  ".join(links), nav="", main="")


def policy(media_url: str, style_hash: str) -> str:
    """The page's Content-Security-Policy: no inline script, nothing evaluated, the one inline
    stylesheet by its hash, media from here and MEDIA_URL's origin only."""
    parts = urlsplit(media_url)
    media = f" {parts.scheme}://{parts.netloc}" if parts.netloc else ""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' {style_hash}",
            f"img-src 'self' blob: data:{media}",
            f"media-src 'self' blob:{media}",
            "connect-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


@dataclass(frozen=True)
class Client:
    """The web client as an app serves it."""

    assets: Assets
    headers: dict[str, str]  # the page's


def init_app(app: Flask, media_url: str) -> None:
    """Read the client's files once, and serve them and the page."""
    assets = Assets(FOLDER)
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": policy(media_url, assets.style_hash),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }
    app.extensions["memedroid.web"] = Client(assets, headers)
    app.register_blueprint(bp)


def _client() -> Client:
    return cast(Client, current_app.extensions["memedroid.web"])


@bp.get("/", endpoint="page")
def page(**route: str) -> Response:
    """The client's page; for a feed read anonymously, with its first screen (see prerender)."""
    first = None if request.cookies.get(CSRF_COOKIE) else _first_page(route)
    client = _client()
    return Response(client.assets.render(first), mimetype="text/html", headers=client.headers)


def _first_page(route: dict[str, str]) -> FirstPage | None:
    """The page of the public API the client asks first on this route (feed.js asks
    `/posts?sort=…&limit=10` and then `window`, `tag` or `author`), as anonymous readers get it."""
    path = request.path
    if path in ("/", "/new"):
        tab = "hot" if path == "/" else "new"
        query, shown = {"sort": tab}, {"tabs": tab}
    elif path == "/top":
        window = request.args.get("window", "")
        window = window if window in WINDOWS else "week"
        query, shown = {"sort": "top", "window": window}, {"tabs": "top", "window": window}
    elif "tag" in route:
        query, shown = {"sort": "new", "tag": route["tag"]}, {"title": f"#{route['tag']}"}
    else:  # a profile, a post, a form: the client draws those
        return None
    tag = query.get("tag")
    try:
        listing = Listing(query["sort"], query.get("window"), tag and normalise_tags([tag])[0])
        body = services().feeds.page(listing, None, FEED_PAGE, ANONYMOUS).body
    except MemeDroidError:  # a tag that is no tag: the client asks, and says so
        return None
    asked = urlencode({"sort": query.pop("sort"), "limit": FEED_PAGE, **query})
    first = FirstPage(f"/posts?{asked}", body, **shown)
    return first if first.items else None  # nothing to paint early: the client says so itself


for _route in ROUTES:
    bp.add_url_rule(_route, endpoint="page", view_func=page, methods=["GET"])


@bp.get(f"{STATIC}/<name>")
@exempt  # no read limit: a page's own files, from memory
def static(name: str) -> Response:
    asset = _client().assets.files.get(name) or abort(404)
    response = Response(asset.body, mimetype=asset.mimetype)
    response.headers.update({"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"})
    response.set_etag(asset.etag)
    response.make_conditional(request)
    return response
