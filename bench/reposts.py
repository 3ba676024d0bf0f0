"""Repost detection: how well MemeDroid's perceptual fingerprints find a meme's altered
copies, how fast PostgreSQL finds them among millions, and what hashing costs a worker.

    .venv/bin/python bench/reposts.py [--images 1000] [--seed 7] [--search 2000000] [--cost 10] [--clips 40]

Accuracy: draws `--images` distinct meme-like images with ImageMagick (a background of one or
two colours, shapes, a caption of two lines), applies each transform a meme suffers on its way
around, and fingerprints every image with the pipeline's own code, from the thumbnail-sized
pixels a worker hashes (memedroid/pipeline/processing/fingerprint.py: pHash and dHash, also
without plain bars). It prints the recall of every transform (the copy matches its own
original) and the share of distinct originals' pairs that match (false positives), for the
production rule (pHash within the threshold and dHash within MATCH's, over every view of both
pictures), for pHash alone, and for the dHash threshold around the production one.

Search (`--search N`): the measured hashes plus skewed synthetic ones, N rows in the real
schema (an embedded PostgreSQL, migrated), looked up with the repository's band query and with
a sequential scan of the same table, in turn.

Cost (`--cost N`): N images and N clips through the worker's processing, with and without
fingerprinting, in turn. Clips (`--clips N`): N distinct clips and altered copies of each,
matched by half of their frames and by the middle frame alone.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from wand.color import Color
from wand.drawing import Drawing
from wand.image import Image

from memedroid.db import Connection
from memedroid.messages import Fingerprint
from memedroid.pipeline.processing import fingerprint
from memedroid.repositories.hashes import MATCH, Radius

WIDTH, HEIGHT = 600, 450
FONT = "DejaVu-Sans-Bold"  # ImageMagick's default (Helvetica) needs Ghostscript's fonts; DejaVu comes with fontconfig
THUMBNAIL_SIDE = 480  # the pipeline's default
WORDS = "when you the finally cat dog monday code works deploy friday nobody me also boss coffee bug fixed prod why".split()
THRESHOLDS = (8, 10, 12, 14, 16)
DHASH_THRESHOLDS = (12, 16, 20, 24, 64)
TARGETS = {"jpeg q40": 0.99, "rescale 50%": 0.99, "blur": 0.99, "watermark": 0.99, "crop 5%": 0.95, "caption bar": 0.95}
FALSE_POSITIVES = 0.001
SERVER = {"shared_buffers": "1GB"}  # a server that holds the band indexes (4 × ~150 MB at 2M rows) in its cache
LOOKUP_MODES = {  # each on a connection of its own: a prepared statement keeps the plan it was made with
    "one process each (a lookup's work)": "-c max_parallel_workers_per_gather=0",
    "parallel workers allowed (the default; latency on an idle machine)": "",
}


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


def rendition(img: Image) -> list[Fingerprint]:
    """The fingerprints the pipeline takes of an upload: from its pixels shrunk to the thumbnail."""
    with img.clone() as copy:
        copy.transform(resize=f"{THUMBNAIL_SIDE}x{THUMBNAIL_SIDE}>")
        return fingerprint.of_image(copy)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances of signed 64-bit hashes (bitwise_count of a signed value counts its
    absolute value's bits: count the unsigned ones)."""
    return np.bitwise_count(np.bitwise_xor(a, b).view(np.uint64))


class Views:
    """Every image's fingerprints: the whole picture's, and the one without plain bars (the
    whole picture's again where it has none)."""

    def __init__(self, count: int) -> None:
        self.phash = np.zeros((count, 2), dtype=np.int64)
        self.dhash = np.zeros((count, 2), dtype=np.int64)

    def set(self, n: int, found: list[Fingerprint]) -> None:
        trimmed = next((f for f in found if f.trimmed), found[0])
        self.phash[n] = [found[0].phash, trimmed.phash]
        self.dhash[n] = [found[0].dhash, trimmed.dhash]


def matches(a: Views, ia: np.ndarray, b: Views, ib: np.ndarray, radius: Radius) -> np.ndarray:
    """Which pairs (a[ia[k]], b[ib[k]]) match by the production rule, over all their views."""
    found = np.zeros(len(ia), dtype=bool)
    for va in range(2):
        for vb in range(2):
            near = distances(a.phash[ia, va], b.phash[ib, vb]) <= radius.phash
            found |= near & (distances(a.dhash[ia, va], b.dhash[ib, vb]) <= radius.dhash)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--search", type=int, default=0, metavar="N", help="then time lookups among N stored hashes")
    parser.add_argument("--cost", type=int, default=0, metavar="N", help="then time hashing in the pipeline: N images, N clips")
    parser.add_argument("--clips", type=int, default=0, metavar="N", help="then the recall and false positives of N clips")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    views = {name: Views(args.images) for name in ["original", *TRANSFORMS, "original flipped"]}
    started = time.monotonic()
    for n in range(args.images):
        with meme(rng) as original:
            views["original"].set(n, rendition(original))
            for name, transform in TRANSFORMS.items():
                with original.clone() as copy:
                    transform(copy, rng)
                    views[name].set(n, rendition(copy))
            with original.clone() as flipped:
                flipped.flop()
                views["original flipped"].set(n, rendition(flipped))
        if (n + 1) % 100 == 0:
            print(f"  {n + 1:,} images ({time.monotonic() - started:.0f} s)", flush=True)
    report(views, args.images)
    if args.search:
        search(views, args.search, rng)
    if args.cost:
        cost(args.cost, rng)
    if args.clips:
        clips(args.clips, rng)
    return 0


def report(views: dict[str, Views], count: int) -> None:
    upper = np.triu_indices(count, k=1)
    own = np.arange(count)
    print(f"\n{count:,} images, {len(upper[0]):,} pairs of distinct originals")
    for label, dhash in ((f"pHash within the threshold and dHash within {MATCH.dhash} (the production rule)", MATCH.dhash),
                         ("pHash alone", 64)):  # fmt: skip
        print(f"\n{label}\n{'pHash threshold':24}" + "".join(f"{t:>8}" for t in THRESHOLDS))
        recall: dict[int, dict[str, float]] = {t: {} for t in THRESHOLDS}
        for name in TRANSFORMS:
            for t in THRESHOLDS:
                recall[t][name] = float(np.mean(matches(views[name], own, views["original"], own, Radius(t, dhash))))
            print(f"{name:24}" + "".join(f"{recall[t][name]:8.1%}" for t in THRESHOLDS))
        flip = {t: np.mean(matches(views["flip"], own, views["original flipped"], own, Radius(t, dhash))) for t in THRESHOLDS}
        print(f"{'flip, flipped hash too':24}" + "".join(f"{flip[t]:8.1%}" for t in THRESHOLDS))
        false = {
            t: np.mean(matches(views["original"], upper[0], views["original"], upper[1], Radius(t, dhash))) for t in THRESHOLDS
        }
        print(f"{'false positives':24}" + "".join(f"{false[t]:8.3%}" for t in THRESHOLDS))
        met = [t for t in THRESHOLDS if false[t] <= FALSE_POSITIVES and all(recall[t][n] >= goal for n, goal in TARGETS.items())]
        print(f"thresholds meeting every target: {met or 'none'}")
    print(f"\npHash within {MATCH.phash}, dHash within…{'':9}" + "".join(f"{t:>8}" for t in DHASH_THRESHOLDS))
    for name in ("watermark", "crop 5%", "caption bar", "screenshot"):
        found = [np.mean(matches(views[name], own, views["original"], own, Radius(MATCH.phash, t))) for t in DHASH_THRESHOLDS]
        print(f"{name:34}" + "".join(f"{rate:8.1%}" for rate in found))
    false_rates = [
        np.mean(matches(views["original"], upper[0], views["original"], upper[1], Radius(MATCH.phash, t)))
        for t in DHASH_THRESHOLDS
    ]
    print(f"{'false positives':34}" + "".join(f"{rate:8.3%}" for rate in false_rates))


# --- search: the band query against a sequential scan -------------------------------------


def skewed(found: np.ndarray, count: int, rng: random.Random) -> np.ndarray:
    """`count` hashes whose bits are set as often as in the measured `found` ones (real
    hashes are not uniform: some bits are mostly set, some mostly clear)."""
    bits = np.unpackbits(np.ascontiguousarray(found).view(np.uint8)).reshape(len(found), 64).mean(axis=0)
    draws = np.random.default_rng(rng.randrange(2**32)).random((count, 64)) < bits
    return np.packbits(draws.astype(np.uint8), axis=1).view(np.int64).ravel()


def search(views: dict[str, Views], count: int, rng: random.Random) -> None:
    """Store `count` hashes (the measured originals' and skewed ones) in media_hashes and time
    lookups of altered copies: the repository's band query against a sequential scan."""
    import psycopg
    from psycopg.rows import dict_row

    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests")]
    from system import database

    measured = len(views["original"].phash)
    phash = np.concatenate([views["original"].phash[:, 0], skewed(views["original"].phash[:, 0], count - measured, rng)])
    dhash = np.concatenate([views["original"].dhash[:, 0], skewed(views["original"].dhash[:, 0], count - measured, rng)])
    with tempfile.TemporaryDirectory(prefix="memedroid-reposts-") as tmp, database(Path(tmp), SERVER) as url:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            conn.execute("ALTER TABLE media_hashes DROP CONSTRAINT media_hashes_media_id_fkey")  # no media rows here
            with conn.cursor().copy("COPY media_hashes (media_id, frame, trimmed, phash, dhash) FROM STDIN") as copy:
                for n, (p, d) in enumerate(zip(phash.tolist(), dhash.tolist(), strict=True)):
                    copy.write_row([n + 1, 0, False, p, d])
            conn.execute("VACUUM ANALYZE media_hashes")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")  # a server in use has its hot set cached
            for relation in ("media_hashes", *(f"media_hashes_band{n}_idx" for n in range(4))):
                conn.execute("SELECT pg_prewarm(%s)", (relation,))
            probes = [
                Fingerprint(0, False, int(views[name].phash[n, 0]), int(views[name].dhash[n, 0]))
                for name in ("crop 5%", "watermark")
                for n in range(min(100, measured))
            ]
        print(f"\nsearch among {count:,} stored hashes ({len(probes)} lookups: 5 % crops and watermarked copies):")
        for mode, options in LOOKUP_MODES.items():
            with psycopg.connect(url, autocommit=True, row_factory=dict_row, options=options) as conn:
                seq, band, found = lookups(conn, probes)
            print(f"{mode}: sequential scan {seq:.1f} ms, band indexes {band:.1f} ms (median) → {seq / band:.1f}× faster"
                  " (target ≥ 10×)")  # fmt: skip
            print(f"  matches: {found['sequential']} by the scan, {found['bands']} by the bands (must be equal);"
                  f" {(found['bands'] - len(probes)) / len(probes):.2f} unrelated per lookup")  # fmt: skip


def lookups(conn: Connection, probes: list[Fingerprint]) -> tuple[float, float, dict[str, int]]:
    """The median milliseconds of a sequential scan and of the repository's band query, looking
    up each probe with both in turn, and how many media each found."""
    from memedroid.repositories import hashes

    scan = "SELECT media_id FROM media_hashes WHERE hamming(phash, %s) <= %s AND hamming(dhash, %s) <= %s"
    timings: dict[str, list[float]] = {"sequential": [], "bands": []}
    found = {"sequential": 0, "bands": 0}
    for probe in probes:
        began = time.perf_counter()
        found["bands"] += len(hashes.near(conn, [probe], MATCH))
        timings["bands"].append(time.perf_counter() - began)
        began = time.perf_counter()
        found["sequential"] += len(conn.execute(scan, (probe.phash, MATCH.phash, probe.dhash, MATCH.dhash)).fetchall())
        timings["sequential"].append(time.perf_counter() - began)
    seq, band = (statistics.median(timings[name]) * 1000 for name in ("sequential", "bands"))
    return seq, band, found


# --- cost: what fingerprinting adds to a worker's time ------------------------------------


def cost(count: int, rng: random.Random) -> None:
    """Process `count` images (1200 × 900 JPEG) and clips (10 s, 854 × 480, to transcode) as a
    worker does, each twice in turn: as it is, and with fingerprinting switched off."""
    import subprocess
    from unittest import mock

    from memedroid.pipeline.processing import Budget, Limits, process, video

    limits = Limits(2048, 1280, 180, 480)
    spent = {kind: {"with": 0.0, "without": 0.0} for kind in ("image", "clip")}
    off = [mock.patch.object(fingerprint, "of_image", lambda _img: []),
           mock.patch.object(video._Frames, "output", property(lambda _self: [])),
           mock.patch.object(video._Frames, "fingerprints", lambda _self, _raw: [])]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="memedroid-cost-") as tmp:
        folder = Path(tmp)
        for n in range(count):
            image, clip = folder / f"meme{n}.jpg", folder / f"clip{n}.avi"
            with meme(rng) as picture:
                picture.resize(1200, 900)  # a phone-sized upload
                picture.save(filename=f"JPEG:{image}")
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=30:duration=10,hue=h={n * 37}",
                 "-c:v", "mpeg4", "-q:v", "4", str(clip)],
                check=True,
            )  # fmt: skip
            for kind, path, source_type in (("image", image, "jpeg"), ("clip", clip, "avi")):
                for mode in ("with", "without") if n % 2 else ("without", "with"):
                    work = folder / f"work-{kind}-{n}-{mode}"
                    work.mkdir()
                    patches = off if mode == "without" else []
                    for patch in patches:
                        patch.start()
                    began = time.perf_counter()
                    done = process(source_type, path, work, Budget(limits, time.monotonic() + 300))
                    spent[kind][mode] += time.perf_counter() - began
                    for patch in patches:
                        patch.stop()
                    assert bool(done.fingerprints) == (mode == "with")
    print(f"\nwhat fingerprinting adds to a worker's time ({count} of each, with and without, in turn):")
    for kind, took in spent.items():
        added = took["with"] / took["without"] - 1
        print(
            f"{kind:6} {took['without'] / count * 1000:.0f} ms without, {took['with'] / count * 1000:.0f} ms with: {added:+.1%} (target ≤ 5 %)"
        )


# --- clips: hashes per frame ---------------------------------------------------------------


CLIP_COPIES = {
    "re-encoded, half size": ["-vf", "scale=iw/2:ih/2:force_divisible_by=2", "-crf", "35"],
    "crop 5%": ["-vf", "crop=iw*0.95:ih*0.95,scale=trunc(iw/2)*2:trunc(ih/2)*2", "-crf", "28"],
    "as a GIF, back to MP4": [],
}


def clips(count: int, rng: random.Random) -> None:
    """`count` distinct clips (moving gradients with boxes) and their altered copies, all
    through the pipeline's processing, matched by the production rule (half of the frames)
    and, for comparison, by the middle frame alone."""
    import subprocess

    from memedroid.pipeline.processing import Budget, Limits, process

    limits = Limits(2048, 1280, 180, 480)
    found: dict[str, list[list[Fingerprint]]] = {name: [] for name in ["original", *CLIP_COPIES]}

    def ffmpeg(*args: str) -> None:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)

    def fingerprints(path: Path, kind: str, work: Path) -> list[Fingerprint]:
        work.mkdir()
        return process(kind, path, work, Budget(limits, time.monotonic() + 300)).fingerprints

    with tempfile.TemporaryDirectory(prefix="memedroid-clips-") as tmp:
        folder = Path(tmp)
        for n in range(count):
            boxes = ",".join(
                f"drawbox=x='mod(t*{rng.randrange(20, 90)}+{rng.randrange(400)},400)':y={rng.randrange(300)}:"
                f"w={rng.randrange(30, 120)}:h={rng.randrange(30, 120)}:color=0x{rng.randrange(1 << 24):06x}:t=fill"
                for _ in range(3)
            )
            source = folder / f"clip{n}.mp4"
            ffmpeg("-f", "lavfi", "-i", f"gradients=s=480x360:seed={rng.randrange(1 << 30)}:speed=0.02,{boxes}",
                   "-t", str(rng.choice((3, 5, 8))), "-r", "15", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(source))  # fmt: skip
            found["original"].append(fingerprints(source, "mp4", folder / f"w{n}"))
            for k, (name, options) in enumerate(CLIP_COPIES.items()):
                if options:
                    copy, kind = folder / f"copy{n}-{k}.mp4", "mp4"
                    ffmpeg("-i", str(source), *options, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(copy))
                else:
                    copy, kind = folder / f"copy{n}-{k}.gif", "gif"
                    ffmpeg("-i", str(source), "-vf", "scale=240:-1", str(copy))
                found[name].append(fingerprints(copy, kind, folder / f"w{n}-{k}"))
    print(f"\n{count} clips (3 frames each, at ¼, ½ and ¾), matched by half of their frames / by the middle frame alone:")
    for name in CLIP_COPIES:
        pairs = list(zip(found[name], found["original"], strict=True))
        print(
            f"{name:24} {np.mean([clip_match(a, b) for a, b in pairs]):7.1%} / {np.mean([clip_match(a, b, 1) for a, b in pairs]):7.1%}"
        )
    distinct = [(a, b) for i, a in enumerate(found["original"]) for b in found["original"][i + 1 :]]
    print(f"{'false positives':24} {np.mean([clip_match(a, b) for a, b in distinct]):7.2%}"
          f" / {np.mean([clip_match(a, b, 1) for a, b in distinct]):7.2%} of {len(distinct):,} distinct pairs")  # fmt: skip


def clip_match(query: list[Fingerprint], stored: list[Fingerprint], frame: int | None = None) -> bool:
    """The repository's rule in Python: at least half of the query's frames (or only `frame`)
    have a picture within MATCH of one of the stored clip's."""
    frames = {f.frame for f in query if frame is None or f.frame == frame}
    hit = {
        q.frame
        for q in query
        if q.frame in frames
        for s in stored
        if ((q.phash ^ s.phash) & (2**64 - 1)).bit_count() <= MATCH.phash
        and ((q.dhash ^ s.dhash) & (2**64 - 1)).bit_count() <= MATCH.dhash
    }
    return bool(frames) and len(hit) >= (len(frames) + 1) // 2


if __name__ == "__main__":
    sys.exit(main())
