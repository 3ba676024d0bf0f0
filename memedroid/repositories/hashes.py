"""Perceptual hashes of media and the near-duplicates found with them (repost detection).

`near()` is the lookup: the media whose pictures are within the match thresholds of some
fingerprints, found through the pHash band indexes (list_near in sql/queries/hashes.sql).
Moderation's banned-media list builds on it too.
"""

from __future__ import annotations

import math
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


def store(conn: Connection, media_id: int, fingerprints: list[Fingerprint], similar: dict[int, int]) -> None:
    """Keep a media's hashes (replacing any it had) and its near-duplicates (media id:
    distance, recorded both ways)."""
    queries.hashes.delete_hashes(conn, media_id=media_id)
    queries.hashes.insert_hashes(
        conn,
        media_id=media_id,
        frames=[f.frame for f in fingerprints],
        trimmed=[f.trimmed for f in fingerprints],
        phashes=[f.phash for f in fingerprints],
        dhashes=[f.dhash for f in fingerprints],
    )
    if similar:
        queries.hashes.link_similar(conn, media_id=media_id, similar_ids=list(similar), distances=list(similar.values()))


def near(conn: Connection, fingerprints: list[Fingerprint], radius: Radius = MATCH, exclude: int | None = None) -> dict[int, int]:
    """The media that look like these fingerprints, with their pHash distance. A still
    matches when any of its pictures does; a clip when at least half of its frames find a
    match in the same media."""
    frames = {f.frame for f in fingerprints}
    needed = math.ceil(len(frames) / 2)
    matched: dict[int, set[int]] = {}
    distance: dict[int, int] = {}
    for fingerprint in fingerprints:
        rows = queries.hashes.list_near(
            conn,
            phash=fingerprint.phash,
            dhash=fingerprint.dhash,
            max_phash=radius.phash,
            max_dhash=radius.dhash,
            page_size=NEAREST,
        )
        for row in rows:
            if row["media_id"] == exclude:
                continue
            matched.setdefault(row["media_id"], set()).add(fingerprint.frame)
            distance[row["media_id"]] = min(distance.get(row["media_id"], 64), row["distance"])
    return {media_id: distance[media_id] for media_id, found in matched.items() if len(found) >= needed}


def first_post(conn: Connection, media_ids: list[int]) -> int | None:
    """The earliest post showing one of these media, if any."""
    found = queries.hashes.get_first_post(conn, media_ids=media_ids)
    return None if found is None else int(found)


def similar_posts(conn: Connection, post_id: int, limit: int) -> list[tuple[Post, int]]:
    """The other completed posts showing this post's media or a near-duplicate, with the distance."""
    rows = queries.hashes.list_similar_posts(conn, post_id=post_id, page_size=limit)
    return [(Post(**{k: v for k, v in row.items() if k != "distance"}), int(row["distance"])) for row in rows]


def media_to_hash(conn: Connection, after_id: int, missing_only: bool, limit: int) -> list[dict[str, Any]]:
    """Completed media after `after_id` in id order (only those without hashes: `missing_only`)."""
    return list(queries.hashes.list_media_to_hash(conn, after_id=after_id, missing_only=missing_only, page_size=limit))
