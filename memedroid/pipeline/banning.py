"""`memedroid ban-media --file`: a file's bytes and pictures, hashed as the pipeline hashes an
upload of it, for the banned list."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from memedroid.messages import Fingerprint
from memedroid.pipeline.processing import Budget, Limits, MediaError, process
from memedroid.settings import Settings
from memedroid.sniff import sniff

HEAD = 4096  # what type sniffing reads


def fingerprint_file(settings: Settings, path: Path) -> tuple[bytes, list[Fingerprint]]:
    """The SHA-256 of a file and the perceptual hashes of what it shows, by the same processing
    an upload of it goes through (under the same limits); `MediaError` for a file it refuses."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        head = file.read(HEAD)
        digest.update(head)
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    found = sniff(head)
    if found.accepted is None:
        raise MediaError(f"unsupported file type: detected {found.detected}")
    budget = Budget(Limits.from_settings(settings), time.monotonic() + settings.job_timeout)
    with tempfile.TemporaryDirectory(prefix="memedroid-ban-") as work:
        done = process(found.accepted.name, path, Path(work), budget)
    return digest.digest(), done.fingerprints
