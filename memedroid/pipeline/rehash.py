"""`memedroid rehash`: perceptual hashes for media processed before repost detection existed
(or all of them again), from their stored renditions, with their near-duplicates.

Each media is hashed outside any transaction, then stored with its near-duplicates in one
short transaction of its own, so an interrupted run loses nothing: `--missing` goes on where
it stopped, a full run from the id it last printed (`--after`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memedroid.db import Database
from memedroid.messages import Fingerprint
from memedroid.pipeline.processing import Budget, Interrupted, Limits, MediaError
from memedroid.repositories import hashes
from memedroid.settings import Settings
from memedroid.storage import Storage

log = logging.getLogger(__name__)

BATCH = 100


@dataclass
class Rehashed:
    hashed: int = 0
    linked: int = 0  # near-duplicate pairs found
    skipped: list[int] = field(default_factory=list)  # media whose rendition is missing or unreadable
    last_id: int = 0


def rehash(
    settings: Settings, db: Database, storage: Storage, missing_only: bool, after: int = 0,
    progress: Callable[[Rehashed], None] | None = None,
) -> Rehashed:  # fmt: skip
    """Hash every completed media after id `after` (only those without hashes: `missing_only`)."""
    done = Rehashed(last_id=after)
    limits = Limits.from_settings(settings)
    while True:
        with db.transaction() as conn:
            batch = hashes.media_to_hash(conn, done.last_id, missing_only, BATCH)
        if not batch:
            return done
        for row in batch:
            done.last_id = row["id"]
            work = storage.work_dir(f"rehash-{row['id']}")
            try:
                rendition = storage.fetch_media(row["path"], work)
                found = _fingerprints(rendition, row, Budget(limits, time.monotonic() + settings.job_timeout))
            except (OSError, MediaError, Interrupted) as exc:
                log.warning("cannot rehash media", extra={"event": "rehash_skipped", "media_id": row["id"], "error": str(exc)})
                done.skipped.append(row["id"])
                continue
            finally:
                storage.remove_tree(work)
            with db.transaction() as conn:
                similar = hashes.near(conn, found, exclude=row["id"])
                hashes.store(conn, row["id"], found, similar)
            done.hashed += 1
            done.linked += len(similar)
        if progress:
            progress(done)


def _fingerprints(rendition: Path, row: dict[str, Any], budget: Budget) -> list[Fingerprint]:
    if not rendition.is_file():
        raise FileNotFoundError(f"the rendition {rendition.name} is missing")
    if row["kind"] == "image":
        from memedroid.pipeline.processing import fingerprint, images

        with images.open_rendition(rendition) as img:
            return fingerprint.of_image(img)
    from memedroid.pipeline.processing import video

    return video.fingerprints(rendition, row["width"], row["height"], float(row["duration_s"]), budget)
