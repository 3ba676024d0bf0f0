"""Still and animated images with Wand (ImageMagick), under MemeDroid's restrictive policy."""

from __future__ import annotations

import os
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

from memedroid.pipeline.processing import Budget, Limits, MediaError, Processed, fingerprint, headers, readable  # noqa: E402
from memedroid.sniff import SourceType  # noqa: E402

JPEG_QUALITY = 85
WEBP_QUALITY = 82


def process(source: SourceType, raw: Path, work: Path, budget: Budget) -> Processed:
    # ImageMagick's temporary files (a pixel cache that outgrew its memory) go to the job's
    # own folder, on the storage disk and gone with the lease, not to /tmp (it reads the
    # variable each time it makes one).
    os.environ["MAGICK_TEMPORARY_PATH"] = str(work)
    budget.remaining()
    declared = headers.check(source.name, raw)
    if declared.frames > 1:
        from memedroid.pipeline.processing import video

        clip = raw if source.name == "gif" else _webp_to_gif(source, raw, work)
        return video.animated(clip, work, budget)
    return _still(source, raw, work, budget.limits)


def _read(source: SourceType, raw: Path) -> Image:
    """Open `raw` with the coder chosen from the sniffed type (never ImageMagick's guess)."""
    filename = f"{source.coder}:{raw}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CorruptImageWarning)
            return Image(filename=filename)
    except (ResourceLimitError, PolicyError) as exc:
        raise MediaError(f"the image is too large or not allowed: {readable(str(exc), str(raw))}") from None
    except CorruptImageWarning as exc:
        raise MediaError(f"not a valid image: {readable(str(exc), str(raw))}") from None
    except (BaseError, WandException) as exc:
        raise MediaError(f"not a valid {source.label}: {readable(str(exc), str(raw))}") from None
    except WandRuntimeError:  # ImageMagick refused without saying why (limits, corrupt data)
        raise MediaError(f"not a valid {source.label}: it is corrupt or too large to decode") from None


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
            fingerprints = fingerprint.of_image(img)  # from the thumbnail's pixels: the shrinking is paid for
    return Processed("image", mime, width, height, rendition, thumbnail, fingerprints=fingerprints)


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


def open_rendition(path: Path) -> Image:
    """One of our own JPEG or WebP files (a rendition or thumbnail)."""
    return Image(filename=f"{'WEBP' if path.suffix == '.webp' else 'JPEG'}:{path}")


def small_rgb(path: Path, side: int = 32) -> list[list[list[int]]]:
    """A thumbnail's pixels, shrunk to at most `side` px, as rows of [r, g, b]."""
    with open_rendition(path) as img:
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
