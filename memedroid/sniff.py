"""Media type detection from the bytes themselves, never from names or client headers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceType:
    """An accepted input type: how to read it and which pipeline handles it."""

    name: str  # stored in media.source_type
    label: str  # for people
    pipeline: str  # "image" (ImageMagick, maybe animated) or "video" (FFmpeg)
    coder: str  # ImageMagick coder prefix, or FFmpeg demuxer forced on the input


ACCEPTED: dict[str, SourceType] = {
    t.name: t
    for t in (
        SourceType("jpeg", "JPEG image", "image", "JPEG"),
        SourceType("png", "PNG image", "image", "PNG"),
        SourceType("gif", "GIF image", "image", "GIF"),
        SourceType("webp", "WebP image", "image", "WEBP"),
        SourceType("heic", "HEIC image", "image", "HEIC"),
        SourceType("avif", "AVIF image", "image", "AVIF"),
        SourceType("mp4", "MP4 video", "video", "mov"),
        SourceType("mov", "QuickTime video", "video", "mov"),
        SourceType("matroska", "WebM/Matroska video", "video", "matroska"),
        SourceType("avi", "AVI video", "video", "avi"),
    )
}

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}

# Recognised but refused: what a client is told was detected.
_REFUSED_SIGNATURES: list[tuple[bytes, str]] = [
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"%PDF", "a PDF document"),
    (b"%!", "a PostScript document"),
    (b"\xc5\xd0\xd3\xc6", "an EPS document"),
    (b"#EXTM3U", "an HLS/M3U playlist"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg file"),
    (b"fLaC", "a FLAC audio file"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "an icon file"),
]
_TEXT_MARKERS: list[tuple[bytes, str]] = [
    (b"<svg", "an SVG image"),
    (b"<?xml", "an XML document"),
    (b"<!doctype html", "an HTML document"),
    (b"<html", "an HTML document"),
    (b"push graphic-context", "an MVG (ImageMagick vector) file"),
    (b"viewbox", "an MVG (ImageMagick vector) file"),
    (b"<image", "an MSL (ImageMagick script) file"),
]


@dataclass(frozen=True)
class Sniffed:
    """The verdict on some bytes: an accepted type, or a description of what was found."""

    accepted: SourceType | None
    detected: str


def sniff(head: bytes) -> Sniffed:
    """Identify a file from its first bytes (a few KiB are plenty)."""
    if not head:
        return Sniffed(None, "an empty file")
    found = _accepted(head)
    if found is not None:
        return Sniffed(ACCEPTED[found], ACCEPTED[found].label)
    return Sniffed(None, _describe(head))


def _accepted(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[4:8] == b"ftyp":
        return _iso_brand(head)
    if head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    return None


def _iso_brand(head: bytes) -> str | None:
    """ISO base media files (MP4, MOV, HEIF, AVIF) name their family in the `ftyp` box."""
    major = head[8:12]
    size = int.from_bytes(head[0:4], "big")
    compatible = {head[i : i + 4] for i in range(16, min(size, len(head)), 4)}
    brands = {major} | compatible
    if major in _AUDIO_BRANDS:
        return None
    if major in _AVIF_BRANDS or (brands & _AVIF_BRANDS and major not in _HEIF_BRANDS):
        return "avif"
    if major in _HEIF_BRANDS:
        return "heic"
    if major == b"qt  ":
        return "mov"
    return "mp4"


def _describe(head: bytes) -> str:
    if head[4:8] == b"ftyp" and head[8:12] in _AUDIO_BRANDS:
        return "an audio-only MP4/M4A file"
    for signature, what in _REFUSED_SIGNATURES:
        if head.startswith(signature):
            return what
    lowered = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for marker, what in _TEXT_MARKERS:
        if lowered.startswith(marker) or (marker in lowered and _is_text(head)):
            return what
    if _is_text(head):
        return "plain text"
    return "unrecognised binary data"


def _is_text(head: bytes) -> bool:
    sample = head[:1024]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(byte >= 0x20 or byte in b"\t\r\n\f" for byte in sample)
