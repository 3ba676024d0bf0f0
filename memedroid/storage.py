"""Media storage on a local (or shared) filesystem.

`raw/` holds uploads waiting for the pipeline, named by the SHA-256 of their bytes; `tmp/`
holds a worker's outputs per lease; `media/` holds final files named by content hash and
sharded two levels deep (`media/ab/cd/abcd….jpg`). Client filenames never reach a path, and
every file appears under its final name by an atomic rename.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from memedroid.errors import InsufficientStorage, PayloadTooLarge, ServiceUnavailable

log = logging.getLogger(__name__)

HEAD_BYTES = 4096  # what the type sniffer sees


@dataclass(frozen=True)
class StoredUpload:
    """An upload written to `raw/` under a temporary name, with what was learnt in one pass."""

    path: Path
    sha256: bytes
    size: int
    head: bytes


class UploadSink:
    """A writable file that hashes and bounds what it is given, keeping the first bytes.

    On `discard()` (or any failure) the partial file is removed: nothing half-written stays.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.head = bytearray()
        self._hash = hashlib.sha256()
        with storage_errors():
            self._file = path.open("xb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.discard()
            raise PayloadTooLarge(f"the file is larger than the limit of {self.limit} bytes")
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self._hash.update(data)
        with storage_errors(self):
            self._file.write(data)

    def finish(self) -> StoredUpload:
        with storage_errors(self):
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return StoredUpload(self.path, self._hash.digest(), self.size, bytes(self.head))

    def discard(self) -> None:
        with suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


@contextmanager
def storage_errors(sink: UploadSink | None = None) -> Iterator[None]:
    """A full or unwritable disk is the server's problem, said clearly: 507 or 503, and the
    partial file is removed."""
    try:
        yield
    except OSError as exc:
        if sink is not None:
            sink.discard()
        log.error("storage write failed", extra={"event": "storage_error", "error": str(exc)})
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage("the server has no room for this file right now") from None
        raise ServiceUnavailable("the server cannot store files right now; try again later", retry_after=30) from None


class Storage:
    """Paths and atomic moves under one storage root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.raw = root / "raw"
        self.tmp = root / "tmp"
        self.media = root / "media"

    def ensure(self) -> Storage:
        for folder in (self.raw, self.tmp, self.media):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def writable(self) -> bool:
        """Whether uploads and results can be written (the folders exist and accept files)."""
        return all(folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) for folder in (self.raw, self.tmp, self.media))

    # --- uploads ---------------------------------------------------------------------------

    def upload_sink(self, limit: int) -> UploadSink:
        return UploadSink(self.raw / f".upload-{uuid.uuid4().hex}.part", limit)

    def raw_path(self, sha256_hex: str) -> Path:
        return self.raw / sha256_hex

    def keep_raw(self, upload: StoredUpload) -> Path:
        """Rename an upload to its content-addressed raw name (atomic)."""
        target = self.raw_path(upload.sha256.hex())
        with storage_errors():
            os.replace(upload.path, target)
        return target

    # --- work in progress ------------------------------------------------------------------

    def work_dir(self, lease_token: str) -> Path:
        """A fresh folder for one lease's outputs."""
        folder = self.tmp / lease_token
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # --- final files -----------------------------------------------------------------------

    def media_name(self, sha256_hex: str, suffix: str) -> str:
        """The path of a final file relative to `media/`, e.g. `ab/cd/abcd….thumb.jpg`."""
        return f"{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}{suffix}"

    def place(self, source: Path, name: str) -> None:
        """Move a finished file to `media/<name>` atomically (same filesystem)."""
        target = self.media / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def remove_media(self, names: list[str], sha256_hex: str) -> None:
        """Delete a media's files, `names` under `media/`, and its raw upload."""
        for name in names:
            (self.media / name).unlink(missing_ok=True)
        self.raw_path(sha256_hex).unlink(missing_ok=True)

    # --- housekeeping ----------------------------------------------------------------------

    def files_older_than(self, folder: Path, seconds: float) -> Iterator[Path]:
        """Regular files under `folder` not modified for `seconds`."""
        cutoff = time.time() - seconds
        for path in folder.rglob("*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    yield path
            except FileNotFoundError:
                continue

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def size_bytes(self) -> dict[str, int]:
        """Bytes used by each area, for operators."""
        return {
            area.name: sum(p.stat().st_size for p in area.rglob("*") if p.is_file()) for area in (self.raw, self.tmp, self.media)
        }
