"""The first screen of a feed, drawn on the server for anonymous readers: the API page the
client would ask first, carried in the HTML as data, and the cards of that page as markup the
same shape as the client's (card.js), so the first meme paints before any script has run.
The client then draws its own cards in their place, from the same data."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

import orjson

FIRST_SCREEN = 3  # cards drawn on the server: a phone shows two or three
SCRIPT_ENDS = str.maketrans({"<": "\\u003c"})  # no text in the JSON can close its element
AGES = (("year", 31536000), ("month", 2592000), ("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))


@dataclass(frozen=True)
class FirstPage:
    """A page of the public API the client would ask for first, given with the HTML."""

    path: str  # as the client asks for it, under /api/v1
    body: str  # the API's JSON answer
    tabs: str | None = None  # the feed tab shown (hot, new, top); None for a titled feed
    title: str | None = None
    window: str = "week"  # top's window

    @functools.cached_property
    def items(self) -> list[dict[str, Any]]:
        return list(orjson.loads(self.body)["items"])

    def head(self) -> str:
        """The data block the client reads instead of asking, and the first image's preload."""
        data = self.body.translate(SCRIPT_ENDS)
        tags = [f'<script type="application/json" id="first-page" data-path="{escape(self.path)}">{data}</script>']
        media = next((post["media"] for post in self.items[:1] if post["media"]), None)
        if media and media["kind"] == "image":
            tags.append(f'<link rel="preload" as="image" href="{escape(media["url"])}" fetchpriority="high">')
        return "\n  ".join(tags)

    def main(self) -> str:
        """The feed as feed.js draws it: the tabs or the title, the cards, the end."""
        cards = "".join(card(post, eager=i == 0) for i, post in enumerate(self.items[:FIRST_SCREEN]))
        above = tabs(self.tabs, self.window) if self.tabs else f"<h1>{escape(self.title or '')}</h1>"
        label = escape(self.title or "Memes")
        return f'<section class="feed-page">{above}<div class="feed" role="feed" aria-label="{label}">{cards}</div><div class="end"></div></section>'


def tabs(current: str, window: str) -> str:
    def tab(href: str, name: str, label: str) -> str:
        mark = ' aria-current="page"' if name == current else ""
        return f'<a href="{href}" class="tab"{mark}>{label}</a>'

    links = tab("/", "hot", "Hot") + tab("/new", "new", "New") + tab(f"/top?window={window}", "top", "Top")
    if current == "top":
        options = "".join(
            f'<option value="{w}"{" selected" if w == window else ""}>{"all time" if w == "all" else w}</option>'
            for w in ("day", "week", "month", "year", "all")
        )
        links += f'<label class="window">Top of the <select>{options}</select></label>'
    return f'<nav class="tabs" aria-label="Feeds">{links}</nav>'


def card(post: dict[str, Any], eager: bool) -> str:
    """One post as card.js draws it for an anonymous reader."""
    pid, user = post["id"], escape(post["author"]["username"])
    page = f"/p/{pid}"
    caption = escape(post["caption"] or "Untitled")
    parts = [
        f'<article class="card" aria-labelledby="caption-{pid}" data-post="{pid}">',
        f'<header><a href="/u/{quote(post["author"]["username"])}" class="author">@{user}</a> · '
        f'<a href="{page}" class="when"><time datetime="{post["created_at"]}">{ago(post["created_at"])}</time></a></header>',
        f'<h2 class="caption" id="caption-{pid}"><a href="{page}">{caption}</a></h2>',
    ]
    if repost := post["repost_of"]:
        parts.append(f'<p class="badge">Repost of <a href="/p/{repost["post_id"]}">a post by {escape(repost["author"])}</a></p>')
    parts.append(media(post, eager))
    if post["tags"]:
        parts.append(
            '<p class="tags">' + "".join(f'<a href="/t/{quote(t)}" class="tag">#{escape(t)}</a> ' for t in post["tags"]) + "</p>"
        )
    likes, comments = post["like_count"], post["comment_count"]
    parts.append(
        '<footer class="actions">'
        f'<button type="button" class="like" aria-pressed="false" aria-label="Like ({count(likes, "like")})">'
        f'<span aria-hidden="true">♡</span> {likes}</button>'
        f'<a href="{page}#comments" class="comments">{count(comments, "comment")}</a></footer></article>'
    )
    return "".join(parts)


def media(post: dict[str, Any], eager: bool) -> str:
    m = post["media"]
    label = escape(post["caption"] or f"A meme by {post['author']['username']}")
    size = f'width="{m["width"]}" height="{m["height"]}"'
    if m["kind"] == "image":
        hints = 'loading="eager" fetchpriority="high" elementtiming="first-meme"' if eager else 'loading="lazy" decoding="async"'
        shown = f'<img {hints} alt="{label}" {size} src="{escape(m["url"])}">'
    else:
        loop = " loop" if m["loop"] else ""
        preload = "auto" if eager else "metadata"
        poster = escape(m["thumbnail_url"])
        shown = f'<video preload="{preload}" muted{loop} playsinline {size} aria-label="{label}" poster="{poster}" src="{escape(m["url"])}"></video>'
    return f'<div class="frame">{shown}</div>'


def count(n: int, one: str) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {one}s"


def ago(iso: str) -> str:
    """How long ago, in the words the client uses (it redraws the card with its own)."""
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in AGES:
        if seconds >= size:
            n = round(seconds / size)
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"
