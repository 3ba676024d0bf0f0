"""Pipeline benchmark: the running system against the same transforms run directly.

    .venv/bin/python bench/pipeline.py [--images 40] [--clips 8]

In one run, on one machine: N images and M clips go through the real system (upload → 202 →
workers → finalizer → completed) and, separately, through `convert`/`ffmpeg` called directly
with the same parallelism (one process per core). Prints both throughputs and their ratio,
the 202 latency while every worker is busy against idle, and the workers' peak RSS.
Then (`--store-images K`, 0 to skip) K more images each, in turn: through the system on the
local disk and on an S3-compatible store (moto's S3 server, in this process), and through one
node against two (one worker each) on that store.
Uses an embedded PostgreSQL in a temporary folder unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fixtures  # noqa: E402  (the test suite's media generators)
from system import PeakRss, System, database  # noqa: E402  (the test suite's supervisor harness)

TARGETS = {"images": 0.85, "clips": 0.9, "latency": 1.5, "rss_mb": 400, "s3": 0.8}
CONVERT = "/usr/bin/convert"


def make_inputs(folder: Path, images: int, clips: int, tag: str = "", first: int = 0) -> tuple[list[Path], list[Path]]:
    """Distinct photos (noise, so they compress like photos) and clips that need transcoding."""
    env = {k: v for k, v in os.environ.items() if k != "MAGICK_CONFIGURE_PATH"}
    photos = []
    for n in range(first, first + images):
        path = folder / f"photo{n}.jpg"
        subprocess.run(
            [CONVERT, "-size", "2400x1600", f"plasma:gray{n % 90}-white", "-seed", str(n), "+noise", "Gaussian",
             "-quality", "92", str(path)],
            check=True, env=env,
        )  # fmt: skip
        photos.append(path)
    videos = []
    for n in range(clips):
        source = fixtures.mp4_h264_aac(folder, seconds=4, size="1280x720", name=f"src{n}.mp4")
        path = folder / f"clip{n}.avi"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c:v", "mpeg4", "-q:v", "4", "-c:a", "mp3",
                        "-metadata", f"title={tag}{n}", str(path)], check=True)  # fmt: skip
        videos.append(path)
    return photos, videos


def direct(paths: list[Path], kind: str, out: Path, parallel: int) -> float:
    """Items per second doing the same transforms with the tools themselves."""
    env = {k: v for k, v in os.environ.items() if k != "MAGICK_CONFIGURE_PATH"}

    def image(path: Path) -> None:
        rendition, thumb = out / f"{path.stem}.jpg", out / f"{path.stem}.thumb.jpg"
        subprocess.run([CONVERT, str(path), "-auto-orient", "-strip", "-resize", "2048x2048>", "-quality", "85",
                        "-interlace", "plane", str(rendition)], check=True, env=env)  # fmt: skip
        subprocess.run([CONVERT, str(rendition), "-resize", "480x480>", str(thumb)], check=True, env=env)

    def clip(path: Path) -> None:
        rendition = out / f"{path.stem}.mp4"
        subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                       check=True, capture_output=True)  # fmt: skip
        scale = "scale=w='min(iw,1280)':h='min(ih,1280)':force_original_aspect_ratio=decrease:force_divisible_by=2"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-c:v", "libx264", "-preset",
                        "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-vf", scale, "-c:a", "aac", "-b:a", "128k",
                        "-movflags", "+faststart", str(rendition)], check=True)  # fmt: skip
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "1", "-i", str(rendition), "-frames:v", "1",
                        "-vf", "scale=480:-2", str(out / f"{path.stem}.jpg")], check=True)  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(image if kind == "images" else clip, paths))
    return len(paths) / (time.perf_counter() - started)


def through_system(system: System, auth: dict[str, str], paths: list[Path], uploaders: list[System] | None = None) -> float:
    """Items per second from the first upload to the last `completed`, as PostgreSQL saw it
    (so that the client's polling interval does not count); the uploads spread over
    `uploaders` (default: `system`)."""
    uploaders = uploaders or [system]
    with psycopg.connect(system.env["DATABASE_URL"]) as conn:
        started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    ids = []
    for n, path in enumerate(paths):
        response = uploaders[n % len(uploaders)].upload(auth, path)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for post_id in ids:
        post = system.wait_done(auth, post_id, timeout=600)
        assert post["status"] == "completed", post
    with psycopg.connect(system.env["DATABASE_URL"]) as conn:
        finished = conn.execute(
            "SELECT max(m.finished_at) FROM posts AS p JOIN media AS m ON m.id = p.media_id WHERE p.id = ANY(%s)", (ids,)
        ).fetchone()[0]
    return len(paths) / (finished - started).total_seconds()


def upload_latency(system: System, auth: dict[str, str], folder: Path, label: str, count: int = 15) -> float:
    timings = []
    for n in range(count):
        path = fixtures.jpeg(folder, f"lat-{label}-{n}.jpg", seed=f"gray{n}")
        started = time.perf_counter()
        assert system.upload(auth, path).status_code == 202
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def storage_and_nodes(folder: Path, url: str, count: int) -> dict[str, float]:
    """Images per second: on the local disk and on the object store (one node, one worker each,
    in turn, fresh images each time); then one node against two on the store."""
    from stores import s3, s3_server

    base = {"DATABASE_URL": url, "WORKERS": "1", "LOG_LEVEL": "WARNING"}
    batch = iter(range(1000, 100_000, count))
    results: dict[str, float] = {}
    with s3_server() as endpoint:
        s3(endpoint).create_bucket(Bucket="bench")
        bucket = {"STORAGE_URL": "s3://bench/site", "S3_ENDPOINT_URL": endpoint}
        for name, nodes in (
            ("local", [{}]), ("s3", [bucket]), ("local 2", [{}]), ("s3 2", [bucket]), ("two nodes", [bucket, bucket])
        ):  # fmt: skip
            run = folder / name.replace(" ", "-")
            run.mkdir()
            photos = make_inputs(run, count, 0, first=next(batch))[0]
            systems = []
            for n, env in enumerate(nodes):
                (run / str(n)).mkdir()
                systems.append(System({**base, **env, "NODE_NAME": f"{run.name}-{n}"}, run / str(n)).wait_ready())
            try:
                auth = systems[0].sign_up(f"bench{len(results)}")
                results[name] = through_system(systems[0], auth, photos, systems)
            finally:
                for system in systems:
                    system.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--store-images", type=int, default=24, help="images per run on the disk, the store, two nodes")
    args = parser.parse_args()
    parallel = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="memedroid-bench-") as tmp, database(Path(tmp)) as url:
        folder = Path(tmp)
        print(f"generating {args.images} images and {args.clips} clips...", flush=True)
        photos, clips = make_inputs(folder, args.images, args.clips)
        out = folder / "direct"
        out.mkdir()
        system = System({"DATABASE_URL": url, "WORKERS": str(parallel), "LOG_LEVEL": "WARNING"}, folder).wait_ready()
        try:
            auth = system.sign_up("bench")
            watcher = PeakRss(system).start()
            idle = upload_latency(system, auth, folder, "idle")
            results = {}
            for kind, paths in (("images", photos), ("clips", clips)):
                results[kind] = (direct(paths, kind, out, parallel), through_system(system, auth, paths))
            # 202 latency while every worker is busy: fresh copies of the clips keep them so.
            (folder / "busy").mkdir()
            busy_paths = make_inputs(folder / "busy", 0, parallel * 2, tag="busy")[1]
            loader = threading.Thread(target=through_system, args=(system, auth, busy_paths))
            loader.start()
            time.sleep(1.0)
            busy = upload_latency(system, auth, folder, "busy")
            loader.join()
            watcher.stop()
        finally:
            system.stop()
        stores = storage_and_nodes(folder, url, args.store_images) if args.store_images else {}

    print(f"\nparallelism: {parallel} (workers = direct tool processes)")
    for kind, (baseline, measured) in results.items():
        ratio = measured / baseline
        verdict = "ok" if ratio >= TARGETS[kind] else "MISSED"
        print(
            f"{kind:7} direct {baseline:7.2f}/s   system {measured:7.2f}/s   ratio {ratio:.2f} (target >= {TARGETS[kind]}) {verdict}"
        )
    latency_ratio = busy / idle
    print(
        f"202 latency idle {idle * 1000:.1f} ms, busy {busy * 1000:.1f} ms, ratio {latency_ratio:.2f} (target <= {TARGETS['latency']}) "
        f"{'ok' if latency_ratio <= TARGETS['latency'] else 'MISSED'}"
    )
    rss_mb = watcher.peak / 2**20
    print(f"worker peak RSS {rss_mb:.0f} MB (target <= {TARGETS['rss_mb']}) {'ok' if rss_mb <= TARGETS['rss_mb'] else 'MISSED'}")
    if stores:
        local, s3 = (stores["local"] + stores["local 2"]) / 2, (stores["s3"] + stores["s3 2"]) / 2
        print(f"images, one worker: local disk {local:.2f}/s, object store {s3:.2f}/s (two runs each, in turn)")
        print(f"  store / disk {s3 / local:.2f} (target >= {TARGETS['s3']}) {'ok' if s3 / local >= TARGETS['s3'] else 'MISSED'}")
        print(f"  two nodes {stores['two nodes']:.2f}/s: {stores['two nodes'] / s3:.2f}x one node (both on this machine's cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
