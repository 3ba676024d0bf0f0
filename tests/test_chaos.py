"""The drill that runs the system the way production pokes it: a steady stream of real uploads
while a seeded chaos loop kill -9s workers (idle and busy), the finalizer, HTTP workers in the
middle of an upload and FFmpeg children, for longer than ImageMagick's old lifetime limit
(120 s), and beside the kills the faults of the machine: the storage disk fills and frees, a
session holds a lock on `posts` or on the media being processed past a lease, Redis refuses
writes, the (embedded) PostgreSQL is killed. After the storm and one lease, every accepted
upload is completed, nothing is pending, processing or failed, no orphan file is left, no
upload was refused but while a fault lasted, and every wedge, full disk and held lock showed
on /readyz."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from chaos import ELDER, STORM_ENV, TARGETS, Faults, Storm
from disks import MiB
from test_feeds import own_redis  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CHAOS_SEED", "20261130"))
STORM_SECONDS = float(os.environ.get("CHAOS_SECONDS", "150"))


def test_a_storm_of_kills_and_faults_loses_no_upload(small_disk, start_system, own_redis, tmp_path: Path) -> None:  # noqa: F811
    disk = small_disk("storage", 1024 * MiB, required=False)  # without one (not root), the disk never fills
    storage = {"STORAGE_DIR": str(disk.path)} if disk is not None else {}
    system = start_system(**STORM_ENV, **storage, DATABASE_URL="", REDIS_URL=own_redis["url"]).wait_ready(timeout=120)
    storm = Storm(system, tmp_path, SEED, lambda tally: Faults(system, own_redis["url"], disk, random.Random(SEED), tally))
    tally = storm.run(STORM_SECONDS)
    storm.settle()
    problems = storm.verdict()
    print(json.dumps(tally.summary()))  # shown with `make test PYTEST_ARGS="-k chaos -s"`
    assert not problems, problems
    assert len(tally.accepted) >= STORM_SECONDS / 2, tally.summary()  # a steady stream went through
    assert set(tally.kills) == set(TARGETS), tally.summary()  # every kind of process died at least once
    faults = Faults(system, own_redis["url"], disk, random.Random(SEED), tally)  # the kinds this machine can have
    assert {kind for kind, _start, _end in tally.faults} == set(faults.kinds), tally.summary()
    # The worker the storm spares kept processing past ImageMagick's old per-process limit.
    assert max(tally.elder_jobs_after) > min(125, STORM_SECONDS - 20), (ELDER, tally.summary())
