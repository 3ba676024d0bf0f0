"""Small disks for the fault drills: a tmpfs of a given size mounted where a test says, filled
and freed at will (mounting takes root, as the suite runs in CI; elsewhere these tests skip)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MiB = 1 << 20


class CannotMount(Exception):
    """This machine does not let us mount a disk (not root)."""


class SmallDisk:
    """A tmpfs of `size` bytes at `path`. `fill(leave)` puts a ballast file on it so that
    `leave` bytes stay free; `free_up()` takes it away."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
        )
        if mounted.returncode != 0:
            raise CannotMount(f"cannot mount a small disk here: {mounted.stderr.strip()}")
        path.chmod(0o777)
        self.ballast = path / ".ballast"

    def free(self) -> int:
        found = os.statvfs(self.path)
        return found.f_bavail * found.f_frsize

    def fill(self, leave: int = 0) -> None:
        with self.ballast.open("ab") as ballast:
            size = os.fstat(ballast.fileno()).st_size + self.free() - leave
            if size > 0:
                os.posix_fallocate(ballast.fileno(), 0, size)

    def free_up(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)
