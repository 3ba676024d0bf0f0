"""Repost detection, accuracy: how well 64-bit perceptual hashes find a meme's altered copies.

    .venv/bin/pip install -e '.[bench]'      # imagehash (with numpy, scipy, PyWavelets, Pillow)
    .venv/bin/python bench/reposts.py [--images 1000] [--seed 7]

Draws `--images` distinct meme-like images with ImageMagick (a background of one or two
colours, shapes, a caption of two lines), applies each transform a meme suffers on its way
around, and passes every image through what the pipeline does to an upload (a JPEG rendition
at the pipeline's quality) before hashing it: pHash and dHash from `imagehash`, each also after
trimming uniform borders. It prints, per hash and Hamming threshold, the recall of every
transform (the copy within the threshold of its own original; a flip also counts against the
original's flipped hash when that variant is shown) and the share of distinct originals'
pairs within the threshold (false positives). This is the first step of issue 13: the numbers
that choose the hash, the border trimming and the threshold before the schema is written.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import imagehash
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageChops
except ImportError:
    print("bench/reposts.py needs imagehash: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
    sys.exit(2)

from wand.color import Color
from wand.drawing import Drawing
from wand.image import Image

WIDTH, HEIGHT = 600, 450
FONT = "DejaVu-Sans-Bold"  # ImageMagick's default (Helvetica) needs Ghostscript's fonts; DejaVu comes with fontconfig
RENDITION_QUALITY = 85  # the pipeline's JPEG quality (not imported: that would load its ImageMagick policy, which draws no text)
WORDS = "when you the finally cat dog monday code works deploy friday nobody me also boss coffee bug fixed prod why".split()
THRESHOLDS = (4, 6, 8, 10, 12, 14)
TARGETS = {"jpeg q40": 0.99, "rescale 50%": 0.99, "blur": 0.99, "watermark": 0.99, "crop 5%": 0.95, "caption bar": 0.95}
FALSE_POSITIVES = 0.001


def colour(rng: random.Random) -> Color:
    return Color(f"rgb({rng.randrange(256)},{rng.randrange(256)},{rng.randrange(256)})")


def meme(rng: random.Random) -> Image:
    """A meme-like picture: a plain or two-colour background, a few shapes, a caption."""
    img = Image(width=WIDTH, height=HEIGHT, background=colour(rng))
    with Drawing() as draw:
        if rng.random() < 0.5:  # a second colour over part of the background
            draw.fill_color = colour(rng)
            draw.rectangle(left=0, top=rng.randrange(HEIGHT), width=WIDTH, height=HEIGHT)
        for _ in range(rng.randrange(2, 7)):
            draw.fill_color = colour(rng)
            x, y, r = rng.randrange(WIDTH), rng.randrange(HEIGHT), rng.randrange(20, 140)
            if rng.random() < 0.5:
                draw.circle((x, y), (x + r, y))
            else:
                draw.rectangle(left=x, top=y, width=r * 2, height=r)
        draw.font, draw.font_size = FONT, 38
        draw.fill_color = Color("white")
        draw.stroke_color = Color("black")
        draw.stroke_width = 2
        for top, words in ((50, rng.sample(WORDS, 3)), (HEIGHT - 25, rng.sample(WORDS, 4))):
            draw.text(20, top, " ".join(words).upper())
        draw(img)
    return img


def _jpeg(quality: int) -> Callable[[Image, random.Random], None]:
    def transform(img: Image, _rng: random.Random) -> None:
        img.format, img.compression_quality = "jpeg", quality
        blob = img.make_blob()
        img.read(blob=blob)

    return transform


def _crop(share: float) -> Callable[[Image, random.Random], None]:
    def transform(img: Image, rng: random.Random) -> None:
        dx, dy = int(img.width * share), int(img.height * share)
        left, top = rng.randrange(dx + 1), rng.randrange(dy + 1)
        img.crop(left=left, top=top, width=img.width - dx, height=img.height - dy)

    return transform


def _watermark(img: Image, _rng: random.Random) -> None:
    with Drawing() as draw:
        draw.font, draw.font_size = FONT, 22
        draw.fill_color = Color("rgba(255,255,255,0.7)")
        draw.text(img.width - 230, img.height - 12, "memes.example.com")
        draw(img)


def _caption_bar(img: Image, rng: random.Random) -> None:
    bar = int(img.height * 0.18)
    img.background_color = Color("white")
    img.extent(width=img.width, height=img.height + bar, x=0, y=-bar)
    with Drawing() as draw:
        draw.font, draw.font_size = FONT, 26
        draw.fill_color = Color("black")
        draw.text(16, bar // 2 + 9, " ".join(rng.sample(WORDS, 5)))
        draw(img)


def _screenshot(img: Image, _rng: random.Random) -> None:
    """Shown in an app and captured: dark bars above and below, thin sides, scaled, re-encoded."""
    img.background_color = Color("rgb(24,24,28)")
    img.extent(width=int(img.width * 1.08), height=int(img.height * 1.5), gravity="center")
    img.resize(int(img.width * 0.9), int(img.height * 0.9))
    _jpeg(75)(img, _rng)


TRANSFORMS: dict[str, Callable[[Image, random.Random], None]] = {
    "jpeg q40": _jpeg(40),
    "rescale 50%": lambda img, _rng: img.resize(img.width // 2, img.height // 2),
    "blur": lambda img, _rng: img.gaussian_blur(radius=0, sigma=1.5),
    "watermark": _watermark,
    "caption bar": _caption_bar,
    "crop 5%": _crop(0.05),
    "crop 10%": _crop(0.10),
    "flip": lambda img, _rng: img.flop(),
    "screenshot": _screenshot,
}


def rendition(img: Image) -> PILImage.Image:
    """What the pipeline keeps of an upload (a JPEG at its quality), decoded for hashing."""
    with img.clone() as copy:
        copy.format, copy.compression_quality = "jpeg", RENDITION_QUALITY
        copy.read(blob=copy.make_blob())
        copy.format = "rgb"
        copy.depth = 8
        return PILImage.frombytes("RGB", copy.size, copy.make_blob())


def trimmed(picture: PILImage.Image) -> PILImage.Image:
    """The picture without uniform borders (a screenshot's bars, padding): the box of what
    differs by more than ~8 % from the top-left pixel's colour."""
    background = PILImage.new(picture.mode, picture.size, picture.getpixel((0, 0)))
    difference = ImageChops.difference(picture, background).convert("L").point(lambda v: 255 if v > 20 else 0)
    box = difference.getbbox()
    return picture.crop(box) if box else picture


HASHES: dict[str, Callable[[PILImage.Image], int]] = {
    "phash": lambda picture: int(str(imagehash.phash(picture)), 16),
    "dhash": lambda picture: int(str(imagehash.dhash(picture)), 16),
    "phash trimmed": lambda picture: int(str(imagehash.phash(trimmed(picture))), 16),
    "dhash trimmed": lambda picture: int(str(imagehash.dhash(trimmed(picture))), 16),
}


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(a, b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--search", type=int, default=0, metavar="N", help="then time near-duplicate lookups among N stored hashes in PostgreSQL"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    names = ["original", *TRANSFORMS, "original flipped"]
    hashes = {kind: {name: np.zeros(args.images, dtype=np.uint64) for name in names} for kind in HASHES}
    timings = {kind: 0.0 for kind in HASHES}
    started = time.monotonic()
    for n in range(args.images):
        with meme(rng) as original:
            variants = {"original": rendition(original)}
            for name, transform in TRANSFORMS.items():
                with original.clone() as copy:
                    transform(copy, rng)
                    variants[name] = rendition(copy)
            variants["original flipped"] = variants["original"].transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)
        for kind, hash_of in HASHES.items():
            began = time.perf_counter()
            for name, picture in variants.items():
                hashes[kind][name][n] = hash_of(picture)
            timings[kind] += time.perf_counter() - began
        if (n + 1) % 100 == 0:
            print(f"  {n + 1:,} images ({time.monotonic() - started:.0f} s)", flush=True)
    report(hashes, timings, args.images)
    if args.search:
        search(hashes["phash"], args.search, rng)
    return 0


def report(hashes: dict[str, dict[str, np.ndarray]], timings: dict[str, float], count: int) -> None:
    upper = np.triu_indices(count, k=1)
    for kind, found in hashes.items():
        original = found["original"]
        pairs = distances(original[upper[0]], original[upper[1]])
        flipped_pairs = np.minimum(pairs, distances(original[upper[0]], found["original flipped"][upper[1]]))
        per_image_ms = timings[kind] / (count * (len(TRANSFORMS) + 2)) * 1000
        print(f"\n{kind} ({per_image_ms:.2f} ms a hash; {len(pairs):,} pairs of distinct originals)")
        print(f"{'threshold':22}" + "".join(f"{t:>8}" for t in THRESHOLDS))
        for name in TRANSFORMS:
            own = distances(found[name], original)
            print(f"{name:22}" + "".join(f"{np.mean(own <= t):8.1%}" for t in THRESHOLDS))
        own = np.minimum(distances(found["flip"], original), distances(found["flip"], found["original flipped"]))
        print(f"{'flip, flipped hash too':22}" + "".join(f"{np.mean(own <= t):8.1%}" for t in THRESHOLDS))
        print(f"{'false positives':22}" + "".join(f"{np.mean(pairs <= t):8.3%}" for t in THRESHOLDS))
        print(f"{'  with flipped hash':22}" + "".join(f"{np.mean(flipped_pairs <= t):8.3%}" for t in THRESHOLDS))
        best = [
            t
            for t in THRESHOLDS
            if np.mean(pairs <= t) <= FALSE_POSITIVES
            and all(np.mean(distances(found[name], original) <= t) >= target for name, target in TARGETS.items())
        ]
        print(f"thresholds meeting every target: {best or 'none'}")


# --- search: a band index against a sequential bit_count scan ------------------------------

BANDS = 4  # 16-bit bands of the 64-bit hash: within distance d, some band is within d // 4
DISTANCE = 14


def skewed(found: np.ndarray, count: int, rng: random.Random) -> np.ndarray:
    """`count` hashes whose bits are set as often as in the measured `found` ones (real
    hashes are not uniform: some bits are mostly set, some mostly clear)."""
    bits = np.unpackbits(found.view(np.uint8)).reshape(len(found), 64).mean(axis=0)
    draws = np.random.default_rng(rng.randrange(2**32)).random((count, 64)) < bits
    return np.packbits(draws.astype(np.uint8), axis=1).view(np.uint64).ravel()


def bands(value: int) -> list[int]:
    """The 16-bit bands of a hash, as PostgreSQL smallints."""
    return [((value >> (16 * n)) & 0xFFFF) - 0x8000 for n in range(BANDS)]


def neighbours(band: int, radius: int) -> list[int]:
    """Every 16-bit value within `radius` bits of `band` (both as smallints)."""
    found, frontier = {band + 0x8000}, {band + 0x8000}
    for _ in range(radius):
        frontier = {value ^ (1 << bit) for value in frontier for bit in range(16)} - found
        found |= frontier
    return [value - 0x8000 for value in found]


def search(found: dict[str, np.ndarray], count: int, rng: random.Random) -> None:
    """Store `count` hashes (the measured originals and skewed ones), index their bands, and
    time lookups of the altered copies at DISTANCE: sequential scan against band probes."""
    import tempfile

    import psycopg

    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests")]
    from system import database

    stored = np.concatenate([found["original"], skewed(found["original"], count - len(found["original"]), rng)])
    signed = stored.view(np.int64)
    radius = DISTANCE // BANDS
    with tempfile.TemporaryDirectory(prefix="memedroid-reposts-") as tmp, database(Path(tmp)) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE hashes (id bigint, h bigint, {', '.join(f'b{n} smallint' for n in range(BANDS))})")
            with conn.cursor().copy("COPY hashes FROM STDIN") as copy:
                for n, value in enumerate(signed.tolist()):
                    copy.write_row([n, value, *bands(value & 0xFFFFFFFFFFFFFFFF)])
            for n in range(BANDS):
                conn.execute(f"CREATE INDEX ON hashes (b{n})")
            conn.execute("VACUUM ANALYZE hashes")
            probes = [int(v) for name in ("crop 5%", "watermark") for v in found[name][:100]]
            within = "bit_count(CAST(h # %(q)s AS bit(64))) <= %(d)s"
            by_band = " OR ".join(f"b{n} = ANY(%(n{n})s)" for n in range(BANDS))
            timings: dict[str, list[float]] = {"sequential": [], "bands": []}
            hits = {"sequential": 0, "bands": 0}
            for probe in probes:
                signed_probe = probe - 2**64 if probe >= 2**63 else probe
                params: dict[str, object] = {"q": signed_probe, "d": DISTANCE}
                params |= {f"n{n}": neighbours(band, radius) for n, band in enumerate(bands(probe))}
                for name, sql in (("sequential", f"SELECT id FROM hashes WHERE {within}"),
                                  ("bands", f"SELECT id FROM hashes WHERE ({by_band}) AND {within}")):  # fmt: skip
                    began = time.perf_counter()
                    hits[name] += len(conn.execute(sql, params).fetchall())
                    timings[name].append((time.perf_counter() - began) * 1000)
    seq, band = (float(np.median(timings[name])) for name in ("sequential", "bands"))
    print(f"\nsearch among {count:,} hashes at distance {DISTANCE} ({BANDS} bands of 16 bits, each probed within {radius} bits):")
    print(f"sequential bit_count scan {seq:.1f} ms, band index {band:.1f} ms → {seq / band:.1f}× faster (target ≥ 10×)")
    print(f"matches found: {hits['sequential']} by the scan, {hits['bands']} by the bands (must be equal)")


if __name__ == "__main__":
    sys.exit(main())
