"""Perceptual fingerprints: what lets the repost search find a meme again after it was
re-encoded, rescaled, blurred, cropped a little, watermarked or given a caption bar.

A picture is shrunk to a grey copy that fits SIDE × SIDE px and hashed twice with imagehash:
a 64-bit pHash, which the band index searches, and a 64-bit dHash, a second opinion that
keeps unrelated pictures apart (two pictures match when both are near). A picture with a
plain white or black bar at an edge (a caption bar, a screenshot's borders) is hashed without
its bars as well. A clip is hashed at CLIP_FRAMES of its duration. bench/reposts.py measured
these choices and the match thresholds (`repositories/hashes.MATCH`; bench/README.md).
"""

from __future__ import annotations

from typing import Any

import imagehash
import numpy as np
from PIL import Image as PILImage

from memedroid.messages import Fingerprint

SIDE = 160
PRESHRINK = 480  # what ImageMagick shrinks a picture to first (the size of a thumbnail: usually done already)
PLAIN = 2.0  # a picture whose grey levels vary less than this (standard deviation) is not hashed
CLIP_FRAMES = (0.25, 0.5, 0.75)  # where a clip is hashed, as fractions of its duration

BAR_TOLERANCE = 12  # grey levels from the bar's colour that still count as the bar
BAR_EDGE = 0.97  # the outermost line must be this plain to start a bar
BAR_MARGIN = 0.9  # a bar ends in a line at least this plain...
BAR_END = 0.15  # ...right before the picture, a line with less than this share of bar colour
BAR_SIZES = (0.03, 0.40)  # a bar's share of the picture's height (or width)


def fit(width: int, height: int) -> tuple[int, int]:
    """The size of the grey copy that is hashed: the picture scaled to fit SIDE × SIDE."""
    scale = SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def of_image(img: Any) -> list[Fingerprint]:
    """The fingerprints of a Wand image (auto-oriented), transparency flattened onto white.
    ImageMagick shrinks it to at most PRESHRINK px a side, Pillow makes it grey and shrinks it
    the rest of the way, as imagehash expects. (This module never imports Wand itself:
    ImageMagick must start under the policy that images.py puts in place.)"""
    with img.clone() as copy:
        copy.background_color = "white"
        copy.alpha_channel = "remove"
        if max(copy.size) > PRESHRINK:
            copy.transform(resize=f"{PRESHRINK}x{PRESHRINK}>")
        copy.format, copy.depth = "rgb", 8
        picture = PILImage.frombytes("RGB", copy.size, copy.make_blob()).convert("L")
    return of_pixels(np.asarray(picture.resize(fit(*picture.size), PILImage.Resampling.BILINEAR)))


def of_pixels(grey: np.ndarray, frame: int = 0) -> list[Fingerprint]:
    """The fingerprints of one grey picture (rows of 8-bit pixels, already shrunk by `fit`);
    none for a plain one (a blank frame looks like every other blank frame)."""
    if grey.std() < PLAIN:
        return []
    found = [_hashed(grey, frame, trimmed=False)]
    inner = without_bars(grey)
    if inner.shape != grey.shape and min(inner.shape) > 0:
        found.append(_hashed(inner, frame, trimmed=True))
    return found


def _hashed(grey: np.ndarray, frame: int, trimmed: bool) -> Fingerprint:
    picture = PILImage.fromarray(grey)
    return Fingerprint(frame, trimmed, _signed(imagehash.phash(picture)), _signed(imagehash.dhash(picture)))


def without_bars(grey: np.ndarray) -> np.ndarray:
    """The picture without a plain white or black bar at any edge, taken side by side."""
    picture = grey.astype(np.int16)
    for _ in range(4):  # the top, then each other side in turn on top
        picture = np.rot90(picture[_bar(picture) :])
    return picture.astype(np.uint8)


def _bar(picture: np.ndarray) -> int:
    """How many lines at the top are a bar: a plain near-white or near-black edge, text on it
    allowed, that ends in a plain line right before a line that is all picture."""
    if len(picture) < 2 or picture.shape[1] == 0:
        return 0
    colour = float(np.median(picture[0]))
    if 35 < colour < 225 or np.mean(np.abs(picture[0] - colour) <= BAR_TOLERANCE) < BAR_EDGE:
        return 0
    limit = int(len(picture) * BAR_SIZES[1])
    share = np.mean(np.abs(picture[:limit] - colour) <= BAR_TOLERANCE, axis=1)
    ends = np.flatnonzero(share < BAR_END)
    if len(ends) == 0:
        return 0
    end = int(ends[0])
    if end < len(picture) * BAR_SIZES[0] or share[max(0, end - 3) : end].max() < BAR_MARGIN:
        return 0
    return end


def _signed(value: imagehash.ImageHash) -> int:
    number = int(str(value), 16)
    return number - (1 << 64) if number >= 1 << 63 else number
