"""What an image file declares about itself, read from its structure without decoding pixels:
the checks that refuse bombs before ImageMagick or FFmpeg allocate anything for them.

- the canvas a PNG, GIF, WebP or JPEG header declares, against the side and area limits (a
  JPEG's frame header is found however far its metadata segments push it; a JPEG without one
  is refused);
- for animations (GIF, WebP), frames × canvas, the pixels a decoder will produce in all;
- for PNG, the size that compressed text and ICC chunks inflate to (a 2 MB file can hold
  2 GB of zTXt), measured with a bounded inflater;
- for JPEG, that the data does not end before the image does.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from memedroid.pipeline.processing import MediaError

MAX_SIDE = 16384  # as in policy.xml
MAX_PIXELS = 128_000_000
# Pixels across all frames of an animation, once each frame is painted on the full canvas.
# GIFs stream through FFmpeg a frame at a time; animated WebP is held whole by ImageMagick.
MAX_ANIMATION_PIXELS = {"gif": 1_000_000_000, "webp": 100_000_000}
MAX_INFLATED_METADATA = 16 * 1024 * 1024  # PNG text and ICC profiles, decompressed, in all
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
PNG_COMPRESSED = {b"zTXt", b"iCCP", b"iTXt"}


@dataclass(frozen=True)
class Declared:
    """What the file says it holds: its canvas (None when the format does not say) and frames."""

    size: tuple[int, int] | None
    frames: int = 1


def check(source_type: str, raw: Path) -> Declared:
    """Refuse (`MediaError`) a file whose structure promises more work than allowed."""
    with raw.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        declared = Declared(declared_size(source_type, data), _frames(source_type, data))
        if source_type == "jpeg" and declared.size is None:
            raise MediaError("not a valid image: the JPEG has no frame header")
        if source_type == "jpeg" and not _jpeg_complete(data):
            raise MediaError("not a valid image: truncated JPEG (the data ends before the image does)")
        if source_type == "png":
            _check_png_metadata(data)
    if declared.size is not None:
        width, height = declared.size
        if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
            raise MediaError(
                f"the image is too large: {width}×{height} pixels "
                f"(at most {MAX_SIDE} per side and {MAX_PIXELS // 1_000_000} megapixels)"
            )
        budget = MAX_ANIMATION_PIXELS.get(source_type)
        if budget is not None and declared.frames * width * height > budget:
            raise MediaError(
                f"the animation is too large: {declared.frames} frames of {width}×{height} pixels "
                f"(at most {budget // 1_000_000} million pixels across all frames)"
            )
    return declared


def declared_size(source_type: str, data: bytes | mmap.mmap) -> tuple[int, int] | None:
    """Width and height as a PNG, GIF, WebP or JPEG header declares them (None: unknown)."""
    if source_type == "png" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if source_type == "gif" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if source_type == "webp":
        return _webp_size(data)
    if source_type == "jpeg":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes | mmap.mmap) -> tuple[int, int] | None:
    """The canvas of an extended (VP8X), lossy (VP8) or lossless (VP8L) WebP."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":  # after the frame tag, its start code
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _frames(source_type: str, data: mmap.mmap) -> int:
    if source_type == "gif":
        return _gif_frames(data)
    if source_type == "webp":
        return sum(1 for kind, _start, _end in _riff_chunks(data) if kind == b"ANMF") or 1
    return 1


def _gif_frames(data: mmap.mmap) -> int:
    """Image descriptors in a GIF, found by walking its blocks (no LZW decoding)."""
    end = len(data)
    if end < 13:
        return 1
    position = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # after the global colour table
    frames = 0
    while position < end:
        introducer = data[position]
        if introducer == 0x2C:  # image descriptor, local colour table, LZW code size, data
            frames += 1
            if position + 10 > end:
                break
            packed = data[position + 9]
            position += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0) + 1
        elif introducer == 0x21:  # extension: label, then data sub-blocks
            position += 2
        else:  # 0x3B trailer, or garbage: nothing more a decoder would paint
            break
        while position < end and data[position]:  # sub-blocks up to the empty one
            position += data[position] + 1
        position += 1
    return max(frames, 1)


def _riff_chunks(data: mmap.mmap) -> Iterator[tuple[bytes, int, int]]:
    """(kind, payload start, payload end) of each top-level chunk of a RIFF file (WebP)."""
    position = 12
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        yield kind, position + 8, min(position + 8 + size, len(data))
        position += 8 + size + (size & 1)


def _check_png_metadata(data: mmap.mmap) -> None:
    """Inflate the compressed text and ICC chunks, at most to the budget, before anyone else does."""
    left = MAX_INFLATED_METADATA
    position = 8
    while position + 8 <= len(data):
        size = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"IEND":
            return
        if kind in PNG_COMPRESSED:
            left -= _inflated_size(_compressed_part(kind, data[position + 8 : position + 8 + size]), left + 1)
            if left < 0:
                raise MediaError(
                    f"the image carries too much compressed metadata (more than {MAX_INFLATED_METADATA // (1024 * 1024)} MB)"
                )
        position += 12 + size


def _compressed_part(kind: bytes, body: bytes) -> bytes:
    """The zlib stream inside a zTXt, iCCP or iTXt chunk (empty when the chunk holds none)."""
    name_end = body.find(b"\0")
    if name_end < 0:
        return b""
    if kind != b"iTXt":  # keyword, NUL, compression method, data
        return body[name_end + 2 :]
    if body[name_end + 1 : name_end + 2] != b"\1":  # iTXt may be uncompressed
        return b""
    language_end = body.find(b"\0", name_end + 3)
    translated_end = body.find(b"\0", language_end + 1) if language_end >= 0 else -1
    return body[translated_end + 1 :] if translated_end >= 0 else b""


def _inflated_size(stream: bytes, limit: int) -> int:
    """How many bytes `stream` inflates to, counting no further than `limit`."""
    inflater = zlib.decompressobj()
    total = 0
    try:
        chunk = inflater.decompress(stream, 64 * 1024)
        while chunk:
            total += len(chunk)
            if total >= limit:
                return total
            chunk = inflater.decompress(inflater.unconsumed_tail, 64 * 1024)
    except zlib.error:
        raise MediaError("not a valid PNG image: a compressed chunk is corrupt") from None
    return total


def _jpeg_size(data: bytes | mmap.mmap) -> tuple[int, int] | None:
    """The frame header's size, found by walking the segments before it by their lengths (as
    many metadata segments as a file has: each says how long it is)."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def _jpeg_complete(data: mmap.mmap) -> bool:
    """A JPEG's entropy-coded data must be followed by an end-of-image marker."""
    scan = data.rfind(b"\xff\xda")
    return scan >= 0 and data.find(b"\xff\xd9", scan) >= 0
