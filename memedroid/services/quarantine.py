"""Where a media's files lie: public in `media/` while a post that is not removed shows them, in
`quarantine/` (served by nobody: not the web server, not the bucket's public policy) while
none does, deleted once the media is banned.

Whatever changes it (a removal, a restore, a ban, a deletion, the same bytes uploaded again, a
media completed after its posts were removed) notes the media in `unsettled_media` in its own
transaction (triggers, `sql/functions/unsettle_*.sql`). `settle()` moves the
files right after that transaction commits, so a removal takes them from the public at once;
what a crash or an unreachable store leaves unsettled, the janitor's next round settles."""

from __future__ import annotations

import logging

from memedroid.db import Database
from memedroid.errors import ServiceUnavailable
from memedroid.repositories import media
from memedroid.repositories.media import Placement
from memedroid.storage import Storage

log = logging.getLogger(__name__)

BATCH = 100  # media settled in one transaction


def settle(db: Database, storage: Storage) -> int:
    """Move the files of every unsettled media where they belong; how many media were settled.
    A store or database that fails leaves the rest for the next call (logged, not raised: the
    change that called it has committed)."""
    settled = 0
    try:
        while True:
            with db.transaction() as conn:
                found = media.lock_unsettled(conn, BATCH)
                for item in found:
                    _place(storage, item)
                media.settled(conn, found)
            settled += len(found)
            if len(found) < BATCH:
                return settled
    except (OSError, ServiceUnavailable) as exc:
        log.warning("media files not moved yet", extra={"event": "quarantine_deferred", "error": str(exc)})
        return settled


def _place(storage: Storage, item: Placement) -> None:
    """Put one media's files where they belong (under its row's lock). The move is made
    whatever the row says of where they are: a move that a failed commit did not record is
    finished or undone."""
    if item.place is None:
        return
    if item.place == "gone":
        storage.remove_media(item.files, item.sha256)
    else:
        storage.move(item.files, "quarantine" if item.place == "media" else "media", item.place)
    if item.quarantined != (item.place != "media") or item.place == "gone":
        event = {"gone": "media_files_deleted", "quarantine": "media_quarantined", "media": "media_unquarantined"}[item.place]
        log.info("media files moved", extra={"event": event, "media_id": item.id, "files": item.files})
