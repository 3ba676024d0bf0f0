"""Media fixtures generated on the spot with ImageMagick, FFmpeg and piexif.

Each function writes a file into `folder` and returns its path; nothing is downloaded.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import zlib
from pathlib import Path

import piexif

GPS_LATITUDE = ((48, 1), (51, 1), (2997, 100))


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _convert(*args: str) -> None:
    """ImageMagick's CLI under the system policy (the pipeline's own policy forbids generators)."""
    env = {k: v for k, v in os.environ.items() if k != "MAGICK_CONFIGURE_PATH"}
    subprocess.run(["/usr/bin/convert", *args], check=True, env=env)


def jpeg(folder: Path, name: str = "photo.jpg", width: int = 64, height: int = 32, seed: str = "red") -> Path:
    """A plain JPEG, wider than tall; `seed` changes its colour and so its bytes."""
    path = folder / name
    _convert("-size", f"{width}x{height}", f"gradient:{seed}-blue", f"JPEG:{path}")
    return path


def jpeg_with_gps_and_rotation(folder: Path) -> Path:
    """64×32 pixels stored, EXIF orientation 6 (display rotated 90°: 32×64), GPS position."""
    path = jpeg(folder, "gps.jpg", seed="green")
    exif = {
        "0th": {piexif.ImageIFD.Orientation: 6, piexif.ImageIFD.Make: b"SpyCam"},
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: GPS_LATITUDE,
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((2, 1), (17, 1), (4000, 100)),
        },
    }
    piexif.insert(piexif.dump(exif), str(path))
    return path


def png_with_alpha(folder: Path) -> Path:
    path = folder / "alpha.png"
    _convert("-size", "40x30", "xc:rgba(255,0,0,0.5)", f"PNG32:{path}")
    return path


def cmyk_jpeg(folder: Path) -> Path:
    path = folder / "cmyk.jpg"
    _convert("-size", "50x40", "gradient:yellow-cyan", "-colorspace", "CMYK", f"JPEG:{path}")
    return path


def noisy_jpeg(folder: Path, name: str = "noise.jpg", width: int = 1600, height: int = 1200) -> Path:
    """A JPEG of random noise: big for its size (1.4 MB at 1600 x 1200), as phone photos are."""
    path = folder / name
    _convert("-size", f"{width}x{height}", "xc:gray", "+noise", "Random", "-quality", "92", f"JPEG:{path}")
    return path


def large_jpeg(folder: Path, side: int = 3000) -> Path:
    return jpeg(folder, "large.jpg", width=side, height=side // 2, seed="orange")


def animated_gif(folder: Path) -> Path:
    path = folder / "anim.gif"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=10", str(path))
    return path


def animated_webp(folder: Path) -> Path:
    path = folder / "anim.webp"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=10", "-c:v", "libwebp_anim", "-loop", "0", str(path))
    return path


def mp4_h264_aac(folder: Path, seconds: float = 1.0, size: str = "320x240", name: str = "clip.mp4") -> Path:
    path = folder / name
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        "-movflags", "+faststart", str(path),
    )  # fmt: skip
    return path


def fast_clip(folder: Path, fps: int, size: str = "160x120") -> Path:
    """A second of H.264 at `fps` frames per second."""
    path = folder / f"fast-{fps}.mp4"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc=duration=1:size={size}:rate={fps}", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


def mpeg4_avi(folder: Path, seconds: float = 3.0, size: str = "640x480", name: str = "clip.avi") -> Path:
    """MPEG-4 Part 2 video and MP3 audio in AVI: it must be transcoded, which keeps a worker busy."""
    path = folder / name
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "mpeg4", "-c:a", "mp3", "-shortest", str(path),
    )  # fmt: skip
    return path


def webm_vp9(folder: Path) -> Path:
    path = folder / "clip.webm"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", "-shortest", str(path),
    )  # fmt: skip
    return path


def silent_mov(folder: Path) -> Path:
    """MPEG-4 Part 2 video, no audio track, in a QuickTime container, rotated 90° by metadata."""
    path = folder / "silent.mov"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=25",
        "-c:v", "mpeg4", "-metadata:s:v:0", "rotate=90", "-an", str(path),
    )  # fmt: skip
    return path


def rotated_mp4(folder: Path) -> Path:
    """A 320×240 H.264 MP4 whose track matrix says "display rotated by 90°" (as phones write)."""
    path = mp4_h264_aac(folder, size="320x240", name="rotated.mp4")
    data = bytearray(path.read_bytes())
    tkhd = data.find(b"tkhd")  # the first track is the video one
    matrix = tkhd - 4 + 48  # box start + fixed fields of a version-0 track header
    rotation_90 = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    data[matrix : matrix + 36] = rotation_90
    path.write_bytes(bytes(data))
    return path


def audio_only_mp4(folder: Path) -> Path:
    path = folder / "audio.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "-f", "mp4", "-brand", "isom", str(path))
    return path


def long_video(folder: Path, seconds: int) -> Path:
    """A cheap clip longer than `seconds` (tiny frames, 1 fps)."""
    path = folder / "long.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"color=black:size=32x32:rate=1:duration={seconds + 5}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def truncated(source: Path, folder: Path, name: str) -> Path:
    """The first half of `source`'s bytes."""
    data = source.read_bytes()
    path = folder / name
    path.write_bytes(data[: len(data) // 2])
    return path


def png_bomb(folder: Path, side: int = 30000) -> Path:
    """A tiny PNG whose header declares `side`×`side` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (side * 3)
    data = zlib.compress(row * 4, 9)
    path = folder / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


MVG_PAYLOAD = (
    b"push graphic-context\nviewbox 0 0 640 480\nfill 'url(https://example.com/x.jpg\"|touch \"{marker})'\npop graphic-context\n"
)
SVG_XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&xxe;</text></svg>\n'
)
HLS_PLAYLIST = b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
POSTSCRIPT = b"%!PS-Adobe-3.0\n/Times-Roman findfont 12 scalefont setfont 72 72 moveto (hi) show showpage\n"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def zeros_deflated(length: int, piece: int = 1 << 20) -> bytes:
    """A zlib stream of `length` zero bytes, made without compressing them all: after a full
    flush, each further megabyte of zeros compresses to the same bytes."""
    deflater = zlib.compressobj(9)
    head = deflater.compress(bytes(piece)) + deflater.flush(zlib.Z_FULL_FLUSH)
    repeat = deflater.compress(bytes(piece)) + deflater.flush(zlib.Z_FULL_FLUSH)
    tail = deflater.flush()[:-4]  # the last block; the checksum must cover `length` zeros
    adler32 = ((length % 65521) << 16) | 1  # of zeros: A stays 1, B adds 1 per byte
    return head + repeat * (length // piece - 1) + tail + adler32.to_bytes(4, "big")


def png_text_bomb(folder: Path, inflated: int = 2 << 30) -> Path:
    """A 16×16 PNG with a zTXt chunk that inflates to `inflated` bytes (2 GiB from a 2 MB file)."""
    plain = folder / "plain.png"
    _convert("-size", "16x16", "xc:green", f"PNG24:{plain}")
    data = plain.read_bytes()
    after_header = 8 + 25  # signature, IHDR
    text = _png_chunk(b"zTXt", b"Comment\x00\x00" + zeros_deflated(inflated))
    path = folder / "text-bomb.png"
    path.write_bytes(data[:after_header] + text + data[after_header:])
    return path


def webp_frame_bomb(folder: Path, frames: int = 1999, canvas: int = 4096) -> Path:
    """An animated WebP of `frames` 1×1 frames on a `canvas`² canvas: tiny on disk, and every
    frame painted on the whole canvas when decoded."""
    one = folder / "one.webp"
    _convert("-size", "1x1", "xc:red", "-define", "webp:lossless=true", f"WEBP:{one}")
    vp8l = one.read_bytes()[12:]  # the single VP8L chunk

    def chunk(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)

    side = (canvas - 1).to_bytes(3, "little")
    header = chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + side + side) + chunk(b"ANIM", bytes(6))
    frame = chunk(b"ANMF", bytes(9) + (100).to_bytes(3, "little") + b"\0" + vp8l)  # at 0,0; 1×1; 100 ms
    body = b"WEBP" + header + frame * frames
    path = folder / "frame-bomb.webp"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def gif_frame_bomb(folder: Path, frames: int = 1999, screen: int = 8192) -> Path:
    """A GIF of `frames` 1×1 frames on a `screen`² logical screen (24 KB on disk)."""
    head = b"GIF89a" + struct.pack("<HH", screen, screen) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    delay = b"\x21\xf9\x04\x00\x02\x00\x00\x00"  # graphic control: 20 ms
    frame = delay + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"  # one pixel
    path = folder / "frame-bomb.gif"
    path.write_bytes(head + frame * frames + b"\x3b")
    return path


def lying_mp4(folder: Path, seconds: int = 300, claimed: int = 2) -> Path:
    """An MP4 holding `seconds` of video whose headers (mvhd, tkhd, mdhd) claim `claimed`."""
    path = folder / "liar.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=64x48:rate=25",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    movie = data.find(b"mvhd") + 4  # version 0 boxes: version/flags, created, modified, timescale, duration
    movie_scale = struct.unpack(">I", data[movie + 12 : movie + 16])[0]
    data[movie + 16 : movie + 20] = struct.pack(">I", claimed * movie_scale)
    track = data.find(b"tkhd") + 4  # ..., track id, reserved, duration (in the movie's timescale)
    data[track + 20 : track + 24] = struct.pack(">I", claimed * movie_scale)
    media = data.find(b"mdhd") + 4
    media_scale = struct.unpack(">I", data[media + 12 : media + 16])[0]
    data[media + 16 : media + 20] = struct.pack(">I", claimed * media_scale)
    path.write_bytes(bytes(data))
    return path


def meme(folder: Path, seed: int, name: str | None = None) -> Path:
    """A meme-like picture (600 × 450): a background of one colour, shapes, and two bars where
    a caption would be; `seed` makes a different one."""
    rng = random.Random(seed)

    def colour() -> str:
        return f"rgb({rng.randrange(256)},{rng.randrange(256)},{rng.randrange(256)})"

    draw = []
    for _ in range(rng.randrange(3, 7)):
        x, y, r = rng.randrange(600), rng.randrange(450), rng.randrange(30, 140)
        shape = f"circle {x},{y} {x + r},{y}" if rng.random() < 0.5 else f"rectangle {x},{y} {x + 2 * r},{y + r}"
        draw += ["-fill", colour(), "-draw", shape]
    for top in (30, 390):  # where top and bottom text would be
        draw += ["-fill", "white", "-draw", f"rectangle {rng.randrange(20, 120)},{top} {rng.randrange(400, 580)},{top + 30}"]
    path = folder / (name or f"meme{seed}.png")
    _convert("-size", "600x450", f"xc:{colour()}", *draw, f"PNG:{path}")
    return path


def altered(source: Path, folder: Path, how: str) -> Path:
    """A copy of `source` as memes travel: `jpeg40` re-encoded, `half` rescaled, `watermark`ed
    in a corner, `crop5` five per cent cropped, `caption` given a white caption bar on top."""
    path = folder / f"{source.stem}-{how}.jpg"
    options = {
        "jpeg40": ["-quality", "40"],
        "half": ["-resize", "50%"],
        "watermark": ["-fill", "rgba(255,255,255,0.7)", "-draw", "rectangle 400,420 590,442"],
        "crop5": ["-gravity", "center", "-crop", "95%x95%+0+0", "+repage"],
        "caption": [
            "-background", "white", "-gravity", "north", "-splice", "0x80", "-gravity", "northwest",
            "-fill", "black", *(arg for x in range(20, 520, 70) for arg in ("-draw", f"rectangle {x},25 {x + 50},55")),
        ],
    }[how]  # fmt: skip
    _convert(str(source), *options, f"JPEG:{path}")
    return path


def clip(folder: Path, source: str, name: str, seconds: float = 2.0, size: str = "320x240") -> Path:
    """A silent clip of one of FFmpeg's test sources (`testsrc2`, `mandelbrot`, ...); a .gif
    name makes an animated GIF."""
    path = folder / name
    codec = [] if name.endswith(".gif") else ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    _ffmpeg("-f", "lavfi", "-i", f"{source}=size={size}:rate=10", "-t", str(seconds), *codec, str(path))
    return path


def reencoded(source: Path, folder: Path, name: str, scale: str = "iw/2:ih/2") -> Path:
    """`source` as another H.264 MP4, downscaled and at a lower quality."""
    path = folder / name
    _ffmpeg("-i", str(source), "-vf", f"scale={scale}:force_divisible_by=2", "-c:v", "libx264", "-crf", "35",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path
