"""The storage interface, and what every backend shares: uploads hashed and bounded as they
stream in, the local scratch folders of the workers, content-addressed names."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from memedroid.errors import InsufficientStorage, PayloadTooLarge, ServiceUnavailable

log = logging.getLogger(__name__)

HEAD_BYTES = 4096  # what the type sniffer sees
MEDIA_TYPES = {".jpg": "image/jpeg", ".webp": "image/webp", ".mp4": "video/mp4"}  # of the files the pipeline makes
IMMUTABLE = "public, max-age=31536000, immutable"  # a final file never changes: its name is its content's hash
AREAS = ("raw", "media", "quarantine")  # quarantine: final files no visible post shows, served by nobody


@dataclass(frozen=True)
class StoredUpload:
    """An upload stored under a temporary name, with what was learnt in one pass."""

    ref: str  # the temporary name, as its backend knows it
    sha256: bytes
    size: int
    head: bytes
    drop: Callable[[], None]  # remove it (it was refused, or it is a duplicate)


class UploadSink(ABC):
    """Takes an upload's bytes as they arrive: hashes them, bounds them, keeps the first ones,
    and hands them to the backend. On `discard()` (or any failure) what was written goes:
    nothing half-written stays."""

    def __init__(self, ref: str, limit: int) -> None:
        self.ref = ref
        self.limit = limit
        self.size = 0
        self.head = bytearray()
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.discard()
            raise PayloadTooLarge(f"the file is larger than the limit of {self.limit} bytes")
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self._hash.update(data)
        with storage_errors(self):
            self._write(data)

    def finish(self) -> StoredUpload:
        with storage_errors(self):
            self._finish()
        return StoredUpload(self.ref, self._hash.digest(), self.size, bytes(self.head), self.discard)

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def _finish(self) -> None: ...

    @abstractmethod
    def discard(self) -> None: ...


@contextmanager
def storage_errors(sink: UploadSink | None = None) -> Iterator[None]:
    """A full, unwritable or unreachable store is the server's problem, said clearly: 507 or
    503, and the partial upload is removed."""
    try:
        yield
    except OSError as exc:
        if sink is not None:
            sink.discard()
        log.error("storage write failed", extra={"event": "storage_error", "error": str(exc)})
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage("the server has no room for this file right now") from None
        raise ServiceUnavailable("the server cannot store files right now; try again later", retry_after=30) from None


def free_bytes(path: Path) -> int:
    """Bytes that may still be written on the file system of `path` (or of its nearest folder
    that exists), by anyone but root (whose reserve PostgreSQL, say, cannot use)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    found = os.statvfs(path)
    return found.f_bavail * found.f_frsize


class Storage(ABC):
    """Where media live. Raw uploads and final files are in the backend's `raw` and `media`
    areas, named relative to them; workers process in local scratch folders (`tmp/`)."""

    def __init__(self, scratch: Path) -> None:
        self.tmp = scratch

    # --- the backend -----------------------------------------------------------------------

    @abstractmethod
    def ensure(self) -> Storage:
        """Make what must exist (folders; the bucket is the operator's); return self."""

    @abstractmethod
    def writable(self) -> bool:
        """Whether uploads and results can be written now."""

    @abstractmethod
    def upload_sink(self, limit: int) -> UploadSink: ...

    @abstractmethod
    def keep_raw(self, upload: StoredUpload) -> None:
        """Store an upload under its content-addressed raw name, before any row points at it."""

    @abstractmethod
    def raw_exists(self, sha256_hex: str) -> bool: ...

    @abstractmethod
    def drop_raw(self, sha256_hex: str) -> None: ...

    @abstractmethod
    def place(self, source: Path, name: str) -> None:
        """Store a finished file as `media/<name>`, whole or not at all, before any row says
        it is there."""

    @abstractmethod
    def fetch(self, area: str, name: str, folder: Path) -> Path:
        """A local file with the bytes of `area/name` (in `folder` when copied);
        `FileNotFoundError` when the store has no such file."""

    @abstractmethod
    def put(self, area: str, name: str, source: Path, sha256_hex: str) -> None:
        """Store a copy of `source` as `area/name`, whole or not at all, with its hash."""

    @abstractmethod
    def stored_hash(self, area: str, name: str) -> str | None:
        """The SHA-256 of `area/name` as stored (None: missing, or stored without one)."""

    @abstractmethod
    def delete(self, area: str, names: list[str]) -> None:
        """Delete files of an area (missing ones are fine)."""

    @abstractmethod
    def move(self, names: list[str], source: str, target: str) -> None:
        """Move files from one area to another under the same names (`media` to `quarantine`,
        say); a file missing from `source` is one moved already."""

    @abstractmethod
    def old_files(self, area: str, seconds: float) -> Iterator[str]:
        """Names of the files in an area not changed for `seconds`."""

    @abstractmethod
    def area_bytes(self, area: str) -> int: ...

    def media_folder(self) -> Path | None:
        """The folder of the final files, when they are local files (development serves them)."""
        return None

    def free_bytes(self) -> int | None:
        """Bytes that uploads may still take on the store's disk (None: no disk of ours, a bucket)."""
        return None

    # --- shared ----------------------------------------------------------------------------

    @staticmethod
    def media_name(sha256_hex: str, suffix: str) -> str:
        """The name of a final file in `media`, e.g. `ab/cd/abcd….thumb.jpg`."""
        return f"{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}{suffix}"

    def fetch_raw(self, sha256_hex: str, folder: Path) -> Path:
        """A local file with the raw upload's bytes, to process."""
        return self.fetch("raw", sha256_hex, folder)

    def fetch_media(self, name: str, folder: Path) -> Path:
        return self.fetch("media", name, folder)

    def remove_media(self, names: list[str], sha256_hex: str) -> None:
        """Delete a media's final files, public or in quarantine, and its raw upload."""
        self.delete("media", names)
        self.delete("quarantine", names)
        self.drop_raw(sha256_hex)

    def scratch_free_bytes(self) -> int:
        """Bytes the workers' local scratch folders may still take."""
        return free_bytes(self.tmp)

    def work_dir(self, lease_token: str) -> Path:
        """A fresh local folder for one lease's work."""
        folder = self.tmp / lease_token
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def work_dirs(self) -> list[Path]:
        return list(self.tmp.iterdir()) if self.tmp.exists() else []

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def size_bytes(self) -> dict[str, int]:
        """Bytes used by each area, for operators (`tmp` is this node's scratch)."""
        scratch = sum(p.stat().st_size for p in self.tmp.rglob("*") if p.is_file()) if self.tmp.exists() else 0
        return {**{area: self.area_bytes(area) for area in AREAS}, "tmp": scratch}
