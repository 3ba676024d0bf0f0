"""Media processing: raw upload in, optimized rendition and thumbnail out (in a work folder).

Errors are data: `MediaError` carries a reason a user can read (the input is bad, do not try
again); `Interrupted` (a timeout, a tool killed from outside) and anything unexpected are worth
another attempt.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blurhash

from memedroid.messages import Fingerprint
from memedroid.settings import Settings
from memedroid.sniff import ACCEPTED

TOO_MUCH_MEMORY = "the file needs more memory to process than a worker may use"


class MediaError(Exception):
    """The input cannot become media; `str(error)` is shown to the user."""


class Interrupted(Exception):
    """Processing stopped for a reason that is not the input's fault; another attempt may work."""


class JobTimeout(Interrupted):
    """Processing ran past the job's deadline."""


@dataclass(frozen=True)
class Limits:
    max_image_side: int
    max_video_side: int
    max_video_seconds: int
    thumbnail_side: int
    max_video_fps: int = 120
    max_video_pixels: int = 24_000_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        s = settings
        return cls(s.max_image_side, s.max_video_side, s.max_video_seconds, s.thumbnail_side, s.max_video_fps, s.max_video_pixels)


def _ignore(_pgid: int) -> None:
    pass


@dataclass(frozen=True)
class Budget:
    """What one job may spend: the limits, a deadline (monotonic clock), and `tool_started`,
    told the process group of each external tool as it starts (0 when it ends) so that whoever
    watches the worker can kill the tool if the worker dies. `cancelled` is set when the job
    must stop now (its lease is lost)."""

    limits: Limits
    deadline: float
    tool_started: Callable[[int], None] = _ignore
    cancelled: threading.Event = field(default_factory=threading.Event)

    def remaining(self) -> float:
        """Seconds left before the deadline; `JobTimeout` when there are none, `Interrupted`
        when the job was cancelled."""
        if self.cancelled.is_set():
            raise Interrupted("the job was cancelled: its lease is lost")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise JobTimeout("processing took too long")
        return left


@dataclass(frozen=True)
class Processed:
    """What processing made; file paths are inside the job's work folder."""

    kind: str  # image | animated | video
    mime: str
    width: int
    height: int
    rendition: Path
    thumbnail: Path
    duration_s: float | None = None
    variants: dict[str, Any] = field(default_factory=dict)
    blurhash: str | None = None  # a placeholder clients paint while the file loads
    fingerprints: list[Fingerprint] = field(default_factory=list)  # for the repost search


def process(source_type: str, raw: Path, work: Path, budget: Budget) -> Processed:
    """Run the pipeline that fits `source_type` on `raw`, writing into `work`."""
    from memedroid.pipeline.processing import images, video  # images imports Wand under our policy

    source = ACCEPTED[source_type]
    pipeline = images.process if source.pipeline == "image" else video.process
    done = pipeline(source, raw, work, budget)
    return dataclasses.replace(done, blurhash=blurhash.encode(images.small_rgb(done.thumbnail), 4, 3))


_LOCATION = re.compile(r"\s*[`'(][^`']*[`')]?\s*@\s*\S+.*$|\s*@\s*(error|warning|fatal)/\S+.*$")


def readable(message: str, *secrets: str) -> str:
    """A tool's error message made fit for users: no file paths, no source locations."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "the file")
    message = _LOCATION.sub("", message)
    message = re.sub(r"/\S+", "the file", message)
    return message.strip().rstrip(".:") or "unknown error"
