"""Messages between the pipeline's processes. The database row is the job; these only say
"work on media X now" (a duplicate is harmless) and "here is what became of it"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    media_id: int
    request_id: str | None = None


@dataclass(frozen=True)
class Fingerprint:
    """A perceptual hash of one picture of a media (memedroid/pipeline/processing/fingerprint.py)."""

    frame: int  # 0 for a still image; a clip's frame, in the order it was taken
    trimmed: bool  # hashed without the picture's plain bars
    phash: int  # signed 64-bit, as PostgreSQL's bigint holds it
    dhash: int


@dataclass(frozen=True)
class Output:
    """A finished file in a worker's tmp folder and the suffix of its final name."""

    path: str
    suffix: str


@dataclass(frozen=True)
class Result:
    """What a worker made of one leased job. `outcome` is `completed`, `failed` (the input is
    bad: permanent), `retry` (something went wrong that another attempt may not hit) or
    `later` (the storage failed: the job waits, its attempt not counted)."""

    media_id: int
    lease_token: str
    request_id: str | None
    attempt: int
    source_type: str
    outcome: str
    duration_ms: float
    error: str | None = None
    kind: str | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    rendition: Output | None = None
    thumbnail: Output | None = None
    variants: dict[str, Any] = field(default_factory=dict)
    blurhash: str | None = None
    fingerprints: list[Fingerprint] = field(default_factory=list)
    similar: dict[int, int] | None = None  # near-duplicate media id: pHash distance (None: not searched)
    work_dir: str | None = None
