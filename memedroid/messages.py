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
class Output:
    """A finished file in a worker's tmp folder and the suffix of its final name."""

    path: str
    suffix: str


@dataclass(frozen=True)
class Result:
    """What a worker made of one leased job. `outcome` is `completed`, `failed` (the input is
    bad: permanent) or `retry` (something went wrong that another attempt may not hit)."""

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
    work_dir: str | None = None
