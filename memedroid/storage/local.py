"""Media on a local (or shared) filesystem under one root: `raw/`, `media/` (sharded two
levels deep), `quarantine/` (as `media/`, served by nobody) and the scratch `tmp/`. Client
filenames never reach a path, and every file appears under its final name by an atomic rename."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

from memedroid.storage.base import Storage, StoredUpload, UploadSink, free_bytes, storage_errors


class FileSink(UploadSink):
    """An upload written to `raw/.upload-<uuid>.part`, synced to disk before it is kept."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(str(path), limit)
        self.path = path
        with storage_errors():
            self._file = path.open("xb")

    def _write(self, data: bytes) -> None:
        self._file.write(data)

    def _finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        with suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


def file_system_now(folder: Path) -> float:
    """Now, by the clock that stamps the files in `folder` (a shared folder's server's, which
    may not be this node's): the time on a file made there now. This node's own clock when no
    file can be made."""
    probe = folder / f".clock-{uuid.uuid4().hex}"
    try:
        probe.touch()  # stamped by the file system (with no time of ours given, an NFS server uses its own)
        return probe.stat().st_mtime
    except OSError:
        return time.time()
    finally:
        probe.unlink(missing_ok=True)


class LocalStorage(Storage):
    """Paths and atomic moves under one storage root."""

    def __init__(self, root: Path) -> None:
        super().__init__(root / "tmp")
        self.root = root
        self.raw = root / "raw"
        self.media = root / "media"

    def ensure(self) -> LocalStorage:
        for folder in (self.raw, self.tmp, self.media, self.root / "quarantine"):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def writable(self) -> bool:
        return all(folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) for folder in (self.raw, self.tmp, self.media))

    def upload_sink(self, limit: int) -> FileSink:
        return FileSink(self.raw / f".upload-{uuid.uuid4().hex}.part", limit)

    def raw_path(self, sha256_hex: str) -> Path:
        return self.raw / sha256_hex

    def keep_raw(self, upload: StoredUpload) -> None:
        with storage_errors():
            os.replace(upload.ref, self.raw_path(upload.sha256.hex()))

    def raw_exists(self, sha256_hex: str) -> bool:
        return self.raw_path(sha256_hex).is_file()

    def drop_raw(self, sha256_hex: str) -> None:
        self.raw_path(sha256_hex).unlink(missing_ok=True)

    def place(self, source: Path, name: str) -> None:
        target = self.media / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)  # atomic: the scratch folder is on the same filesystem

    def fetch(self, area: str, name: str, folder: Path) -> Path:
        path = self.root / area / name  # read where it lies
        if not path.is_file():
            raise FileNotFoundError(f"no {area}/{name} in the storage folder")
        return path

    def put(self, area: str, name: str, source: Path, sha256_hex: str) -> None:
        target = self.root / area / name
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        shutil.copyfile(source, part)
        os.replace(part, target)

    def stored_hash(self, area: str, name: str) -> str | None:
        path = self.root / area / name
        if not path.is_file():
            return None
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()

    def delete(self, area: str, names: list[str]) -> None:
        for name in names:
            (self.root / area / name).unlink(missing_ok=True)

    def move(self, names: list[str], source: str, target: str) -> None:
        for name in names:
            destination = self.root / target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            with suppress(FileNotFoundError):
                os.replace(self.root / source / name, destination)  # atomic: one file system

    def old_files(self, area: str, seconds: float) -> Iterator[str]:
        folder = self.root / area
        cutoff = file_system_now(self.root) - seconds
        for path in folder.rglob("*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    yield str(path.relative_to(folder))
            except FileNotFoundError:
                continue

    def area_bytes(self, area: str) -> int:
        return sum(p.stat().st_size for p in (self.root / area).rglob("*") if p.is_file())

    def media_folder(self) -> Path:
        return self.media

    def free_bytes(self) -> int:
        return free_bytes(self.root)
