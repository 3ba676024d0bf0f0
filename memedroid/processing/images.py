"""Still and animated images with Wand (ImageMagick), under MemeDroid's restrictive policy."""

from __future__ import annotations

import mmap
import os
import struct
import warnings
from pathlib import Path

# The policy must be in place before Wand starts ImageMagick (on import).
POLICY_DIR = Path(__file__).resolve().parent
os.environ["MAGICK_CONFIGURE_PATH"] = str(POLICY_DIR)

from wand.exceptions import (  # noqa: E402
    BaseError,
    CorruptImageWarning,
    PolicyError,
    ResourceLimitError,
    WandException,
    WandRuntimeError,
)
from wand.image import Image  # noqa: E402

from memedroid.processing import Limits, MediaError, Processed, readable, remaining  # noqa: E402
from memedroid.sniff import SourceType  # noqa: E402

JPEG_QUALITY = 85
MAX_SIDE = 16384  # as in policy.xml
MAX_PIXELS = 128_000_000
HEADER_SCAN = 256 * 1024
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
WEBP_QUALITY = 82
ANIMATED_TYPES = ("gif", "webp")


def process(source: SourceType, raw: Path, work: Path, limits: Limits, deadline: float) -> Processed:
    remaining(deadline)
    _check_declared_size(source, raw)
    if source.name == "jpeg" and not _jpeg_complete(raw):
        raise MediaError("not a valid image: truncated JPEG (the data ends before the image does)")
    frames = _frame_count(source, raw)
    if frames > 1 and source.name in ANIMATED_TYPES:
        from memedroid.processing import video

        clip = raw if source.name == "gif" else _webp_to_gif(source, raw, work)
        return video.animated(clip, work, limits, deadline)
    return _still(source, raw, work, limits)


def _read(source: SourceType, raw: Path, ping: bool = False) -> Image:
    """Open `raw` with the coder chosen from the sniffed type (never ImageMagick's guess)."""
    filename = f"{source.coder}:{raw}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CorruptImageWarning)
            return Image(filename=filename) if not ping else Image.ping(filename=filename)
    except (ResourceLimitError, PolicyError) as exc:
        raise MediaError(f"the image is too large or not allowed: {readable(str(exc), str(raw))}") from None
    except CorruptImageWarning as exc:
        raise MediaError(f"not a valid image: {readable(str(exc), str(raw))}") from None
    except (BaseError, WandException) as exc:
        raise MediaError(f"not a valid {source.label}: {readable(str(exc), str(raw))}") from None
    except WandRuntimeError:  # ImageMagick refused without saying why (limits, corrupt data)
        raise MediaError(f"not a valid {source.label}: it is corrupt or too large to decode") from None


def _check_declared_size(source: SourceType, raw: Path) -> None:
    """Refuse decompression bombs from their header, before ImageMagick allocates anything."""
    size = declared_size(source.name, raw)
    if size is None:
        return
    width, height = size
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise MediaError(
            f"the image is too large: {width}×{height} pixels "
            f"(at most {MAX_SIDE} per side and {MAX_PIXELS // 1_000_000} megapixels)"
        )


def declared_size(source_type: str, raw: Path) -> tuple[int, int] | None:
    """Width and height as a PNG, GIF, WebP or JPEG header declares them (None: unknown)."""
    with raw.open("rb") as file:
        head = file.read(HEADER_SCAN)
    if source_type == "png" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if source_type == "gif" and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])
    if source_type == "webp" and head[12:16] == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if source_type == "jpeg":
        return _jpeg_size(head)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
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


def _jpeg_complete(raw: Path) -> bool:
    """A JPEG's entropy-coded data must be followed by an end-of-image marker."""
    with raw.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        scan = data.rfind(b"\xff\xda")
        return scan >= 0 and data.find(b"\xff\xd9", scan) >= 0


def _frame_count(source: SourceType, raw: Path) -> int:
    if source.name not in ANIMATED_TYPES:
        return 1
    with _read(source, raw, ping=True) as pinged:
        return len(pinged.sequence)


def _still(source: SourceType, raw: Path, work: Path, limits: Limits) -> Processed:
    with _read(source, raw) as original:
        with Image(image=original.sequence[0]) if len(original.sequence) > 1 else original.clone() as img:
            img.auto_orient()
            if img.colorspace == "cmyk":
                img.transform_colorspace("srgb")
            img.strip()  # EXIF (GPS!), XMP, comments, profiles
            img.transform(resize=f"{limits.max_image_side}x{limits.max_image_side}>")
            transparent = bool(img.alpha_channel) and source.name in ("png", "webp", "gif", "heic", "avif")
            suffix, mime = (".webp", "image/webp") if transparent else (".jpg", "image/jpeg")
            rendition = work / f"rendition{suffix}"
            _save(img, rendition, transparent)
            width, height = img.width, img.height
            img.transform(resize=f"{limits.thumbnail_side}x{limits.thumbnail_side}>")
            thumbnail = work / f"thumbnail{suffix}"
            _save(img, thumbnail, transparent)
    return Processed("image", mime, width, height, rendition, thumbnail)


def _save(img: Image, path: Path, transparent: bool) -> None:
    if transparent:
        img.format = "webp"
        img.compression_quality = WEBP_QUALITY
    else:
        img.alpha_channel = "remove"  # flatten onto the background for JPEG
        img.format = "jpeg"
        img.compression_quality = JPEG_QUALITY
        img.options["jpeg:sampling-factor"] = "4:2:0"
        img.interlace_scheme = "plane"  # progressive JPEG
    img.save(filename=f"{img.format.upper()}:{path}")


def small_rgb(path: Path, side: int = 32) -> list[list[list[int]]]:
    """A thumbnail's pixels, shrunk to at most `side` px, as rows of [r, g, b]."""
    coder = "WEBP" if path.suffix == ".webp" else "JPEG"
    with Image(filename=f"{coder}:{path}") as img:
        img.transform(resize=f"{side}x{side}")
        img.alpha_channel = "remove"
        flat = img.export_pixels(channel_map="RGB", storage="char")
        width, height = img.width, img.height
    return [[flat[(y * width + x) * 3 : (y * width + x) * 3 + 3] for x in range(width)] for y in range(height)]


def _webp_to_gif(source: SourceType, raw: Path, work: Path) -> Path:
    """FFmpeg cannot decode animated WebP: hand it the frames as a GIF instead."""
    gif = work / "frames.gif"
    with _read(source, raw) as img:
        img.coalesce()
        img.format = "gif"
        img.save(filename=f"GIF:{gif}")
    return gif
