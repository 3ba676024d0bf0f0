"""The chaos storm for as long as an operator likes.

    .venv/bin/python bench/chaos.py [--minutes 10] [--seed 20261130] [--store local|s3] [--no-faults]

The storm of `tests/test_chaos.py` (real uploads while workers, the finalizer, HTTP workers
and FFmpeg children are kill -9'd at random, and, beside the kills, the faults of the machine:
the storage disk fills and frees, a session holds a lock on `posts` or on the media being
processed past a lease, Redis refuses writes, PostgreSQL is killed), run against the real
supervisor for `--minutes`, then one lease for the system to settle; prints what was sent,
answered, killed and broken, and every broken promise (none, or the exit code is 1).

The supervisor runs its own embedded PostgreSQL (which the faults kill) unless DATABASE_URL
is set (then PostgreSQL is never killed), a Redis of the storm's own, and its storage folder on
a tmpfs the storm mounts (which takes root; without it the disk never fills); with
`--store s3`, the files go to a bucket of moto's S3 protocol server, started here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from chaos import STORM_ENV, Faults, Storm  # noqa: E402  (the test suite's storm)
from disks import CannotMount, MiB, SmallDisk  # noqa: E402
from stores import Store, s3, s3_server  # noqa: E402  (the test suite's view of a store)
from system import System, throwaway_redis  # noqa: E402  (the test suite's supervisor harness)


@contextmanager
def store(kind: str) -> Iterator[dict[str, str]]:
    """The settings of the store the storm's system keeps its files in."""
    if kind == "local":
        yield {}
        return
    with s3_server() as endpoint:
        bucket = f"chaos-{uuid.uuid4().hex[:8]}"
        s3(endpoint).create_bucket(Bucket=bucket)
        yield Store.bucket(endpoint, bucket).env


@contextmanager
def storage_disk(folder: Path, minutes: float) -> Iterator[SmallDisk | None]:
    """A tmpfs for the storage folder, large enough for the storm's files (None: cannot mount)."""
    try:
        disk = SmallDisk(folder / "storage", int((512 + 200 * minutes) * MiB))
    except CannotMount as exc:
        print(f"{exc}: the disk will not fill", flush=True)
        yield None
        return
    try:
        yield disk
    finally:
        disk.unmount()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--store", choices=["local", "s3"], default="local")
    parser.add_argument("--no-faults", action="store_true", help="the kills alone")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="memedroid-chaos-") as tmp,
        throwaway_redis() as redis_url,
        store(args.store) as env,
        storage_disk(Path(tmp), args.minutes) as disk,
    ):
        folder = Path(tmp)
        storage = {"STORAGE_DIR": str(disk.path)} if disk is not None else {}
        database = {"DATABASE_URL": os.environ.get("DATABASE_URL", "")}  # "": the supervisor's own
        system = System({**database, "REDIS_URL": redis_url, **STORM_ENV, **env, **storage}, folder).wait_ready(120)
        try:
            faults = None if args.no_faults else lambda tally: Faults(system, redis_url, disk, random.Random(args.seed), tally)
            storm = Storm(system, folder, args.seed, faults)
            print(f"storm for {args.minutes:g} min (seed {args.seed})...", flush=True)
            started = time.monotonic()
            tally = storm.run(args.minutes * 60)
            storm.settle()
            problems = storm.verdict()
            print(json.dumps({**tally.summary(), "settled_after_s": round(time.monotonic() - started - args.minutes * 60)}))
        finally:
            system.stop()
    for problem in problems:
        print(f"BROKEN: {problem}")
    print("nothing lost, nothing wedged" if not problems else f"{len(problems)} broken promise(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
