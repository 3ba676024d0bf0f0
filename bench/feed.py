"""Feed benchmark: the read path under load, against a trivial endpoint of the same app.

    .venv/bin/python bench/feed.py [--posts 1000000] [--seconds 5] [--rounds 3] [--connections 32]

Seeds a large dataset with COPY (posts, their completed media, 10,000 tags, 50,000 users),
starts the real server, and measures with wrk (Debian: `apt-get install wrk`) in one run:
`/healthz` as the ceiling, the feed page as shipped (served from the HTTP worker's memory or
Redis), from Redis alone, uncached (server without Redis), a tag feed, and the latency of page 1
against page 1000 reached by cursor.
Uses an embedded PostgreSQL in a temporary folder unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import free_port  # noqa: E402
from system import System, database  # noqa: E402  (the test suite's supervisor harness)

TARGETS = {"cached": 0.8, "uncached": 0.5, "depth": 1.2}
USERS, TAGS = 50_000, 10_000
BATCH = 100_000


def seed(url: str, posts: int) -> None:
    """Users, tags, completed media, posts and post tags, streamed in with COPY."""
    rng = random.Random(42)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / posts
    with psycopg.connect(url) as conn:
        with conn.cursor().copy("COPY users (username, email, password_hash) FROM STDIN") as copy:
            copy.write("".join(f"user{n}\tuser{n}@example.com\tx\n" for n in range(USERS)))
        with conn.cursor().copy("COPY tags (name) FROM STDIN") as copy:
            copy.write("".join(f"tag{n}\n" for n in range(TAGS)))
        first_user = conn.execute("SELECT min(id) FROM users").fetchone()[0]
        first_tag = conn.execute("SELECT min(id) FROM tags").fetchone()[0]
        for low in range(0, posts, BATCH):
            high = min(posts, low + BATCH)
            media_rows, post_rows, tag_rows = [], [], []
            base = conn.execute("SELECT coalesce(max(id), 0) FROM media").fetchone()[0]
            for n in range(low, high):
                digest = hashlib.sha256(n.to_bytes(8, "big")).hexdigest()
                media_rows.append(
                    f"\\\\x{digest}\tcompleted\tjpeg\t100000\timage\timage/jpeg\t1280\t720\t"
                    f"{digest[:2]}/{digest[2:4]}/{digest}.jpg\t{digest[:2]}/{digest[2:4]}/{digest}.thumb.jpg\n"
                )
                created = (start + step * n).isoformat()
                post_rows.append(f"{first_user + rng.randrange(USERS)}\t{base + n - low + 1}\tmeme {n}\t{created}\n")
                for tag in {rng.randrange(TAGS) for _ in range(2)}:
                    tag_rows.append((n, first_tag + tag, created))
            with conn.cursor().copy(
                "COPY media (sha256, status, source_type, source_bytes, kind, mime, width, height, path, thumbnail_path) FROM STDIN"
            ) as copy:
                copy.write("".join(media_rows))
            first_post = conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0] + 1
            with conn.cursor().copy("COPY posts (author_id, media_id, caption, created_at) FROM STDIN") as copy:
                copy.write("".join(post_rows))
            with conn.cursor().copy("COPY post_tags (post_id, tag_id, created_at) FROM STDIN") as copy:
                copy.write("".join(f"{first_post + n - low}\t{tag}\t{created}\n" for n, tag, created in tag_rows))
            conn.commit()
            print(f"  seeded {high:,} posts", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # write the bulk load out now, not in the middle of a measurement


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    """Requests per second and latency percentiles (ms) from a wrk run."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url], check=True, capture_output=True, text=True
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors while loading {url}:\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps, requests = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]), int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    return {"rps": rps, "requests": requests, "p50": ms("50%"), "p99": ms("99%")}


def latency(session: requests.Session, url: str, count: int = 200) -> float:
    """Median latency (ms) of `count` sequential requests."""
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        assert session.get(url, timeout=10).status_code == 200
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="healthz/feed alternations per server")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/feed.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="memedroid-feed-") as tmp, database(Path(tmp)) as url:
        folder = Path(tmp)
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
        )
        try:
            print(f"seeding {args.posts:,} posts...", flush=True)
            started = time.perf_counter()
            seed(url, args.posts)
            print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
            results = measure(url, f"redis://127.0.0.1:{redis_port}/0", folder, args)
        finally:
            redis.terminate()
    report(results)
    return 0


# Three servers on the same data, all up at once: as shipped (each HTTP worker's memory, then
# Redis), Redis alone (FEED_LOCAL_SECONDS=0), and no cache at all. The machine is shared and
# noisy, so the rounds go through every server in turn, alternating /healthz and its feed loads;
# a round's ratio compares a load with the /healthz runs on either side of it on the same
# server, and the median round is reported.
SERVERS = {
    "cached": {"FEED_LOCAL_SECONDS": "1"},
    "redis only": {"FEED_LOCAL_SECONDS": "0"},
    "uncached": {"FEED_LOCAL_SECONDS": "0", "REDIS_URL": ""},
}


def measure(url: str, redis_url: str, folder: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    load = {
        "WORKERS": "1",
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "8",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "READ_RATE_LIMIT": "100000000/minute",
    }  # limits are checked (and cost), but never bite
    systems: dict[str, System] = {}
    try:
        for server, env in SERVERS.items():
            (folder / server).mkdir()
            systems[server] = System({**load, **env}, folder / server).wait_ready()
        loads = {
            server: {
                f"feed {server}": "/api/v1/posts",
                **({"tag feed uncached": "/api/v1/posts?tag=tag7"} if server == "uncached" else {}),
            }
            for server in SERVERS
        }
        healthz = {}
        for server, system in systems.items():
            requests.get(f"{system.url}/api/v1/posts")  # warm the caches
            wrk(f"{system.url}/healthz", 2, args.connections)  # and the workers
            healthz[server] = wrk(f"{system.url}/healthz", args.seconds, args.connections)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for named in loads.values() for name in named}
        for _ in range(args.rounds):
            for server, system in systems.items():
                runs = {name: wrk(system.url + path, args.seconds, args.connections) for name, path in loads[server].items()}
                after = wrk(f"{system.url}/healthz", args.seconds, args.connections)
                for name, run in runs.items():
                    rounds[name].append({**run, "healthz": (healthz[server]["rps"] + after["rps"]) / 2})
                healthz[server] = after
        results = {
            name: sorted(measured, key=lambda r: r["rps"] / r["healthz"])[len(measured) // 2] for name, measured in rounds.items()
        }
        results["depth"] = depth(systems["uncached"].url)
        return results
    except RuntimeError:  # wrk saw errors: say what the servers said about them
        for server, system in systems.items():
            for record in system.records():
                if record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                    print(f"{server}: {json.dumps(record)}", file=sys.stderr)
        raise
    finally:
        for system in systems.values():
            system.stop()


def depth(base: str) -> dict[str, float]:
    """Median latency of page 1 and of page 1000, reached by following cursors."""
    session = requests.Session()
    cursor, pages = None, 1
    while pages < 1000:
        cursor = session.get(f"{base}/api/v1/posts", params={"cursor": cursor} if cursor else {}).json()["next_cursor"]
        pages += 1
    return {
        "page1": latency(session, f"{base}/api/v1/posts"),
        "page1000": latency(session, f"{base}/api/v1/posts?cursor={cursor}"),
    }


def report(results: dict[str, dict[str, float]]) -> None:
    print(f"\n{'endpoint':20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'healthz req/s':>14} {'ratio':>6}")
    for name in ("feed cached", "feed redis only", "feed uncached", "tag feed uncached"):
        r = results[name]
        print(f"{name:20} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['healthz']:14.0f} {r['rps'] / r['healthz']:6.2f}")
    for label, name, key in (
        ("cached feed / healthz", "feed cached", "cached"),
        ("uncached feed / healthz", "feed uncached", "uncached"),
    ):
        ratio = results[name]["rps"] / results[name]["healthz"]
        print(f"{label:24}{ratio:.2f} (target >= {TARGETS[key]}) {'ok' if ratio >= TARGETS[key] else 'MISSED'}")
    depth = results["depth"]["page1000"] / results["depth"]["page1"]
    print(
        f"page 1000 / page 1      {depth:.2f} ({results['depth']['page1000']:.2f} ms vs {results['depth']['page1']:.2f} ms, "
        f"target <= {TARGETS['depth']}) {'ok' if depth <= TARGETS['depth'] else 'MISSED'}"
    )


if __name__ == "__main__":
    sys.exit(main())
