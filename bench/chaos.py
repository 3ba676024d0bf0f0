"""The chaos storm for as long as an operator likes.

    .venv/bin/python bench/chaos.py [--minutes 10] [--seed 20261130] [--store local|s3]

The storm of `tests/test_chaos.py` (real uploads while workers, the finalizer, HTTP workers
and FFmpeg children are kill -9'd at random), run against the real supervisor for `--minutes`,
then one lease for the system to settle; prints what was sent, answered and killed, and every
broken promise (none, or the exit code is 1). Uses an embedded PostgreSQL in a temporary
folder unless DATABASE_URL is set, and the supervisor's own local Redis; with `--store s3`, the
files go to a bucket of moto's S3 protocol server, started here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from chaos import STORM_ENV, Storm  # noqa: E402  (the test suite's storm)
from stores import Store, s3, s3_server  # noqa: E402  (the test suite's view of a store)
from system import System, database  # noqa: E402  (the test suite's supervisor harness)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--store", choices=["local", "s3"], default="local")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memedroid-chaos-") as tmp, database(Path(tmp)) as url, store(args.store) as env:
        folder = Path(tmp)
        system = System({"DATABASE_URL": url, **STORM_ENV, **env}, folder).wait_ready()
        try:
            storm = Storm(system, folder, args.seed)
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
