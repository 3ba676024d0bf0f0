"""Perceptual hashes of media and the near-duplicates found with them (repost detection).

`near()` is the lookup: the media whose pictures are within the match thresholds of some
fingerprints, found through the pHash band indexes (list_near in sql/queries/hashes.sql).
Moderation's banned-media list is matched the same way (`banned()`), against hashes of its
own that outlive the media they came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from memedroid.db import Connection
from memedroid.messages import Fingerprint
from memedroid.repositories.posts import Post
from memedroid.repositories.queries import queries

NEAREST = 50  # near-duplicates kept per picture searched, the nearest


@dataclass(frozen=True)
class Radius:
    """How near two pictures must be to match: pHash and dHash distances, in bits."""

    phash: int
    dhash: int


MATCH = Radius(phash=14, dhash=20)  # two pictures match when both hashes are this near (bench/README.md)
BANNED = "this media is banned"  # why an upload of banned media, or one that looks like it, fails


def store(conn: Connection, media_id: int, fingerprints: list[Fingerprint], similar: dict[int, int]) -> None:
    """Keep a media's hashes (replacing any it had) and its near-duplicates (media id:
    distance, recorded both ways)."""
    queries.hashes.delete_hashes(conn, media_id=media_id)
    queries.hashes.insert_hashes(conn, media_id=media_id, **_columns(fingerprints))
    if similar:
        queries.hashes.link_similar(conn, media_id=media_id, similar_ids=list(similar), distances=list(similar.values()))


def near(conn: Connection, fingerprints: list[Fingerprint], radius: Radius = MATCH, exclude: int | None = None) -> dict[int, int]:
    """The media that look like these fingerprints, with their pHash distance (`_matching`)."""

    def search(fingerprint: Fingerprint) -> Iterable[tuple[int, int]]:
        rows = queries.hashes.list_near(conn, **_probe(fingerprint, radius), page_size=NEAREST)
        return ((row["media_id"], row["distance"]) for row in rows if row["media_id"] != exclude)

    return _matching(fingerprints, search)


def banned(conn: Connection, fingerprints: list[Fingerprint], radius: Radius = MATCH) -> dict[int, int]:
    """The banned-list entries these fingerprints look like, with their pHash distance."""

    def search(fingerprint: Fingerprint) -> Iterable[tuple[int, int]]:
        rows = queries.hashes.list_banned_near(conn, **_probe(fingerprint, radius))
        return ((row["banned_id"], row["distance"]) for row in rows)

    return _matching(fingerprints, search)


def _columns(fingerprints: list[Fingerprint]) -> dict[str, list[Any]]:
    """Fingerprints as the arrays an insert unnests."""
    return {
        "frames": [f.frame for f in fingerprints],
        "trimmed": [f.trimmed for f in fingerprints],
        "phashes": [f.phash for f in fingerprints],
        "dhashes": [f.dhash for f in fingerprints],
    }


def _probe(fingerprint: Fingerprint, radius: Radius) -> dict[str, int]:
    return {"phash": fingerprint.phash, "dhash": fingerprint.dhash, "max_phash": radius.phash, "max_dhash": radius.dhash}


def _matching(fingerprints: list[Fingerprint], search: Callable[[Fingerprint], Iterable[tuple[int, int]]]) -> dict[int, int]:
    """What `search` finds near these fingerprints (id: nearest pHash distance). A still
    matches when any of its pictures does; a clip when at least half of its frames find a
    match in the same entry."""
    needed = math.ceil(len({f.frame for f in fingerprints}) / 2)
    matched: dict[int, set[int]] = {}
    distance: dict[int, int] = {}
    for fingerprint in fingerprints:
        for found, bits in search(fingerprint):
            matched.setdefault(found, set()).add(fingerprint.frame)
            distance[found] = min(distance.get(found, 64), bits)
    return {found: distance[found] for found, frames in matched.items() if len(frames) >= needed}


def ban(conn: Connection, sha256: bytes, fingerprints: list[Fingerprint], reason: str) -> int | None:
    """Put a file's bytes and pictures on the banned list; the entry's id, or None when the
    bytes are on it already."""
    banned_id: int | None = queries.hashes.insert_banned(conn, sha256=sha256, reason=reason)
    if banned_id is not None and fingerprints:
        queries.hashes.insert_banned_hashes(conn, banned_id=banned_id, **_columns(fingerprints))
    return banned_id


def ban_media(conn: Connection, media_id: int, reason: str) -> int | None:
    """Put a media's bytes and stored hashes on the banned list; as `ban`."""
    banned_id: int | None = queries.hashes.insert_banned_media(conn, media_id=media_id, reason=reason)
    return banned_id


def is_banned(conn: Connection, sha256: bytes) -> bool:
    """Whether these very bytes are on the banned list."""
    return queries.hashes.get_banned_sha256(conn, sha256=sha256) is not None


def media_of(conn: Connection, sha256: bytes) -> int | None:
    """The media of these bytes, if any."""
    found = queries.hashes.get_media_id_of_sha256(conn, sha256=sha256)
    return None if found is None else int(found)


def media_banned(conn: Connection, post_id: int) -> bool:
    """Whether the media of a post is on the banned list."""
    return bool(queries.hashes.get_post_media_banned(conn, post_id=post_id))


def first_post(conn: Connection, media_ids: list[int]) -> int | None:
    """The earliest post showing one of these media, if any."""
    found = queries.hashes.get_first_post(conn, media_ids=media_ids)
    return None if found is None else int(found)


def similar_posts(conn: Connection, post_id: int, limit: int, show_nsfw: bool, blocker_id: int) -> list[tuple[Post, int]]:
    """The other completed posts showing this post's media or a near-duplicate, with the
    distance; NSFW ones only with `show_nsfw`, none by an author `blocker_id` blocks."""
    rows = queries.hashes.list_similar_posts(conn, post_id=post_id, page_size=limit, show_nsfw=show_nsfw, viewer_id=blocker_id)
    return [(Post(**{k: v for k, v in row.items() if k != "distance"}), int(row["distance"])) for row in rows]


def media_to_hash(conn: Connection, after_id: int, missing_only: bool, limit: int) -> list[dict[str, Any]]:
    """Completed media after `after_id` in id order (only those without hashes: `missing_only`)."""
    return list(queries.hashes.list_media_to_hash(conn, after_id=after_id, missing_only=missing_only, page_size=limit))
