"""The drill that runs the system the way production pokes it: a steady stream of real uploads
while a seeded chaos loop kill -9s workers (idle and busy), the finalizer, HTTP workers in the
middle of an upload and FFmpeg children, for longer than ImageMagick's old lifetime limit
(120 s). After the storm and one lease, every accepted upload is completed, nothing is
pending, processing or failed, no orphan file is left, and any wedge showed on /readyz."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from chaos import ELDER, STORM_ENV, TARGETS, Storm

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CHAOS_SEED", "20261130"))
STORM_SECONDS = float(os.environ.get("CHAOS_SECONDS", "150"))


def test_a_storm_of_kills_loses_no_upload(start_system, tmp_path: Path) -> None:
    system = start_system(**STORM_ENV).wait_ready()
    storm = Storm(system, tmp_path, SEED)
    tally = storm.run(STORM_SECONDS)
    storm.settle()
    problems = storm.verdict()
    print(json.dumps(tally.summary()))  # shown with `make test PYTEST_ARGS="-k chaos -s"`
    assert not problems, problems
    assert len(tally.accepted) >= STORM_SECONDS, tally.summary()  # a steady stream went through
    assert set(tally.kills) == set(TARGETS), tally.summary()  # every kind of process died at least once
    # The worker the storm spares kept processing past ImageMagick's old per-process limit.
    assert max(tally.elder_jobs_after) > min(125, STORM_SECONDS - 20), (ELDER, tally.summary())
