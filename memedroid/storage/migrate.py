"""`memedroid migrate-storage`: a copy of every raw upload and final file of one store in
another (a folder into a bucket, say), verified by hash, and resumable: what the target holds
already with the same hash is passed over. The database needs no change: it holds names, and
MEDIA_URL makes the URLs."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from memedroid.storage.base import AREAS, Storage


@dataclass
class Copied:
    copied: int = 0
    present: int = 0  # in the target already, the same bytes
    bytes: int = 0


class VerifyFailed(OSError):
    """The target holds other bytes than were sent."""


def migrate(source: Storage, target: Storage, progress: Callable[[str, Copied], None] | None = None) -> Copied:
    """Copy every file of `source`'s raw and media areas into `target`, checking each by its
    SHA-256 afterwards; uploads still streaming in (`.upload-…`) are left out."""
    done = Copied()
    scratch = source.work_dir(f"migrate-{uuid.uuid4().hex}")
    try:
        for area in AREAS:
            for name in source.old_files(area, 0):
                if name.rsplit("/", 1)[-1].startswith("."):
                    continue
                local = source.fetch(area, name, scratch)
                with local.open("rb") as file:
                    digest = hashlib.file_digest(file, "sha256").hexdigest()
                if target.stored_hash(area, name) == digest:
                    done.present += 1
                else:
                    target.put(area, name, local, digest)
                    if target.stored_hash(area, name) != digest:
                        raise VerifyFailed(f"{area}/{name}: the target holds other bytes than were sent")
                    done.copied += 1
                    done.bytes += local.stat().st_size
                if local.parent == scratch:
                    local.unlink()
                if progress:
                    progress(f"{area}/{name}", done)
    finally:
        source.remove_tree(scratch)
    return done
