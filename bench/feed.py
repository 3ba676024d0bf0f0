"""Feed benchmark: the read path under load, against a trivial endpoint of the same app.

    .venv/bin/python bench/feed.py [--posts 1000000] [--seconds 5] [--rounds 3] [--connections 32]

Seeds a large dataset with COPY (a year of posts with their completed media, likes spread as
they are on real sites: most posts none, a few thousands; one in ten NSFW, which anonymous
readers never get; 10,000 tags, 50,000 users), starts
the real server, and measures with wrk (Debian: `apt-get install wrk`) in one run: `/healthz`
as the ceiling, the `new` and `hot` pages as shipped (served from the HTTP worker's memory or
Redis), from Redis alone, uncached (every lookup a miss: CACHE_BYTES=0), a tag feed; the latency of page 1
against page 1000 (`new`) and page 50 (`hot`) reached by cursor; the first comments page of a
10,000-comment thread; a signed-in reader's uncached `new` and `hot` pages with 1,000 accounts
blocked against the same reader blocking none; a full recompute of the hot ranks, with the
latency of likes while it runs against likes on an idle server; and at the edge (`--only edge`
for these alone): the `new` page through nginx's micro-cache against nginx serving a static
file of the same size, and a conditional request answered 304 by gunicorn against `/healthz`.
Uses an embedded PostgreSQL in a temporary folder unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import free_port, wait_for_port  # noqa: E402
from system import System, database, throwaway_redis  # noqa: E402  (the test suite's supervisor harness)

TARGETS = {"cached": 0.8, "uncached": 0.5, "depth": 1.2, "hot cached": 0.8, "hot uncached": 0.5, "hot depth": 1.2}
TARGETS["likes during recompute"] = 1.5
TARGETS["comments uncached"] = 0.5
TARGETS["blocks"] = 1.5
TARGETS["proxied"] = 0.8
TARGETS["not modified"] = 1.0
BLOCKS = 1000
NSFW = 0.1  # of the posts
THREAD = [2500, 4000, 2500, 700, 200, 100]  # comments at each depth of the big thread: 10,000
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
                likes = likes_of(rng)
                nsfw = "t" if rng.random() < NSFW else "f"
                author = first_user + rng.randrange(USERS)
                post_rows.append(f"{author}\t{base + n - low + 1}\tmeme {n}\t{likes}\t{created}\t{nsfw}\n")
                for tag in {rng.randrange(TAGS) for _ in range(2)}:
                    tag_rows.append((n, first_tag + tag, created, likes))
            with conn.cursor().copy(
                "COPY media (sha256, status, source_type, source_bytes, kind, mime, width, height, path, thumbnail_path) FROM STDIN"
            ) as copy:
                copy.write("".join(media_rows))
            first_post = conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0] + 1
            with conn.cursor().copy("COPY posts (author_id, media_id, caption, like_count, created_at, nsfw) FROM STDIN") as copy:
                copy.write("".join(post_rows))
            with conn.cursor().copy("COPY post_tags (post_id, tag_id, created_at, like_count) FROM STDIN") as copy:
                copy.write("".join(f"{first_post + n - low}\t{tag}\t{created}\t{likes}\n" for n, tag, created, likes in tag_rows))
            conn.commit()
            print(f"  seeded {high:,} posts", flush=True)
    seed_thread(url, rng)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # write the bulk load out now, not in the middle of a measurement


def seed_thread(url: str, rng: random.Random) -> None:
    """The big thread: 10,000 comments under the newest post, `THREAD[d]` at depth d + 1, each
    a reply to a random comment one level up, liked like posts are."""
    with psycopg.connect(url) as conn:
        post_id, first_user = conn.execute("SELECT (SELECT max(id) FROM posts), (SELECT min(id) FROM users)").fetchone()  # type: ignore[misc]
        parents: list[int | None] = [None]
        for depth, count in enumerate(THREAD, start=1):
            rows = conn.execute(
                "INSERT INTO comments (post_id, parent_id, author_id, depth, body, like_count) "
                "SELECT %s, parent, author, %s, 'comment at depth ' || %s, likes "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS c (parent, author, likes) RETURNING id",
                (
                    post_id,
                    depth,
                    depth,
                    [rng.choice(parents) for _ in range(count)],
                    [first_user + rng.randrange(USERS) for _ in range(count)],
                    [likes_of(rng) for _ in range(count)],
                ),
            ).fetchall()
            parents = [row[0] for row in rows]
        conn.execute(
            "UPDATE comments c SET reply_count = r.n FROM "
            "(SELECT parent_id, count(*) AS n FROM comments WHERE parent_id IS NOT NULL GROUP BY parent_id) r "
            "WHERE c.id = r.parent_id"
        )
        conn.execute("UPDATE posts SET comment_count = %s WHERE id = %s", (sum(THREAD), post_id))
    print(f"  seeded a {sum(THREAD):,}-comment thread under post {post_id}", flush=True)


def likes_of(rng: random.Random) -> int:
    """Likes as they fall on a meme site: four posts in five get none, the rest a power law
    (half of those 1-2, one in a hundred over 100, a few over 10,000)."""
    return 0 if rng.random() < 0.8 else min(50_000, int(rng.paretovariate(1.0)))


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Requests per second and latency percentiles (ms) from a wrk run."""
    sent = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *sent, url], check=True, capture_output=True, text=True
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
    parser.add_argument("--only", choices=["edge"], help="measure only these (the edge: nginx, 304s)")
    args = parser.parse_args()
    for tool, package in (("wrk", "wrk"), ("nginx", "nginx (make run-proxy installs it)")):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin") is None:
            print(f"bench/feed.py needs {tool}: apt-get install {package}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="memedroid-feed-") as tmp, database(Path(tmp)) as url, throwaway_redis() as redis:
        print(f"seeding {args.posts:,} posts...", flush=True)
        started = time.perf_counter()
        seed(url, args.posts)
        print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
        results = measure(url, redis, Path(tmp), args)
    report(results, args.only)
    return 0


# Three servers on the same data, all up at once: as shipped (each HTTP worker's memory, then
# Redis), Redis alone (FEED_LOCAL_SECONDS=0), and no cache at all. The machine is shared and
# noisy, so the rounds go through every server in turn, alternating /healthz and its feed loads;
# a round's ratio compares a load with the /healthz runs on either side of it on the same
# server, and the median round is reported.
SERVERS = {
    "cached": {"FEED_LOCAL_SECONDS": "1"},
    "redis only": {"FEED_LOCAL_SECONDS": "0"},
    # Every lookup misses and renders: Redis stays (the write limits need it; an empty
    # REDIS_URL only makes the supervisor start one of its own) but may store no byte.
    "uncached": {"FEED_LOCAL_SECONDS": "0", "CACHE_BYTES": "0"},
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
        "LIKE_RATE_LIMIT": "100000000/minute",
        "HOT_RANK_INTERVAL": "86400",  # the bench recomputes when it measures that, not in between
    }  # limits are checked (and cost), but never bite
    systems: dict[str, System] = {}
    with psycopg.connect(url) as conn:
        thread_post = conn.execute("SELECT post_id FROM comments LIMIT 1").fetchone()[0]  # type: ignore[index]
    try:
        for server, env in SERVERS.items():
            if args.only and server != "cached":
                continue
            (folder / server).mkdir()
            systems[server] = System({**load, **env}, folder / server).wait_ready()
        if args.only == "edge":
            return edge(systems["cached"], folder, args)
        loads = {
            server: {
                f"feed {server}": "/api/v1/posts",
                f"hot {server}": "/api/v1/posts?sort=hot",
                **({"tag feed uncached": "/api/v1/posts?tag=tag7"} if server == "uncached" else {}),
                **({"top week uncached": "/api/v1/posts?sort=top&window=week"} if server == "uncached" else {}),
                f"comments {server}": f"/api/v1/posts/{thread_post}/comments",
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
        results["depth"] = depth(systems["uncached"].url, "", 1000)
        results["hot depth"] = depth(systems["uncached"].url, "sort=hot", 50)
        results.update(blocking(url, systems["uncached"], args))
        results["recompute"] = recompute(url, folder, systems["uncached"])
        return results | edge(systems["cached"], folder, args)
    except RuntimeError:  # wrk saw errors: say what the servers said about them
        for server, system in systems.items():
            for record in system.records():
                if record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                    print(f"{server}: {json.dumps(record)}", file=sys.stderr)
        raise
    finally:
        for system in systems.values():
            system.stop()


def edge(system: System, folder: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The `new` page through nginx (its micro-cache, as `memedroid proxy` runs it) against the
    same nginx serving a file of the page's size from the disk; and straight to gunicorn, the
    page revalidated (If-None-Match: a 304) against /healthz. Alternating runs, median round."""
    from memedroid.runtime.proxy import Proxy
    from memedroid.settings import Settings

    page = requests.get(f"{system.url}/api/v1/posts", timeout=10)
    static = system.storage / "media" / "page.json"
    static.parent.mkdir(parents=True, exist_ok=True)
    static.write_bytes(page.content)
    port = free_port()
    proxy = Proxy.from_settings(Settings.from_env(system.env), f"127.0.0.1:{port}", folder / "nginx")
    nginx = subprocess.Popen(dataclasses.replace(proxy, access_log="off").command(), stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        front = f"http://127.0.0.1:{port}"
        assert requests.get(f"{front}/media/page.json", timeout=10).content == page.content
        revalidate = {"If-None-Match": page.headers["ETag"]}
        assert requests.get(f"{system.url}/api/v1/posts", headers=revalidate, timeout=10).status_code == 304
        wrk(f"{front}/api/v1/posts", 2, args.connections)  # warm nginx and its cache
        rounds: dict[str, list[dict[str, float]]] = {"proxied feed": [], "not modified": []}
        for _ in range(args.rounds):
            feed, file = (
                wrk(f"{front}/api/v1/posts", args.seconds, args.connections),
                wrk(f"{front}/media/page.json", args.seconds, args.connections),
            )
            rounds["proxied feed"].append({**feed, "baseline": file["rps"], "bytes": len(page.content)})
            healthz = wrk(f"{system.url}/healthz", args.seconds, args.connections)
            unchanged = wrk(f"{system.url}/api/v1/posts", args.seconds, args.connections, revalidate)
            rounds["not modified"].append({**unchanged, "baseline": healthz["rps"]})
    finally:
        nginx.terminate()
        nginx.wait(10)
    return {name: sorted(runs, key=lambda r: r["rps"] / r["baseline"])[len(runs) // 2] for name, runs in rounds.items()}


def depth(base: str, query: str, page: int) -> dict[str, float]:
    """Median latency of page 1 and of page `page`, reached by following cursors."""
    session = requests.Session()
    first = f"{base}/api/v1/posts?{query}"
    cursor, pages = None, 1
    while pages < page:
        cursor = session.get(first + (f"&cursor={cursor}" if cursor else "")).json()["next_cursor"]
        pages += 1
    return {"first": latency(session, first), "deep": latency(session, f"{first}&cursor={cursor}")}


def blocking(url: str, system: System, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """One signed-in reader's uncached `new` and `hot` pages with BLOCKS accounts blocked (the
    authors of the first page's posts, and others at random) against the same reader blocking
    nobody, in alternating wrk runs; the median round of each."""
    auth = system.sign_up("blocker")
    with psycopg.connect(url) as conn:
        reader = conn.execute("SELECT id FROM users WHERE username = 'blocker'").fetchone()[0]  # type: ignore[index]
        first_page = [row[0] for row in conn.execute("SELECT author_id FROM posts ORDER BY created_at DESC, id DESC LIMIT 20")]
        others = [
            row[0] for row in conn.execute("SELECT id FROM users WHERE id <> %s ORDER BY random() LIMIT %s", (reader, BLOCKS))
        ]
    blocked = list(dict.fromkeys(first_page + others))[:BLOCKS]
    rounds: dict[str, list[dict[str, float]]] = {"blocks new": [], "blocks hot": []}
    for _ in range(args.rounds):
        for name, path in (("blocks new", "/api/v1/posts"), ("blocks hot", "/api/v1/posts?sort=hot")):
            none = wrk(system.url + path, args.seconds, args.connections, auth)
            with psycopg.connect(url) as conn:
                conn.execute("INSERT INTO blocks (blocker_id, blocked_id) SELECT %s, unnest(%s::bigint[])", (reader, blocked))
            some = wrk(system.url + path, args.seconds, args.connections, auth)
            with psycopg.connect(url) as conn:
                conn.execute("DELETE FROM blocks WHERE blocker_id = %s", (reader,))
            rounds[name].append({**some, "none": none["rps"]})
    return {name: sorted(runs, key=lambda r: r["none"] / r["rps"])[len(runs) // 2] for name, runs in rounds.items()}


def recompute(url: str, folder: Path, system: System, runs: int = 5) -> dict[str, float]:
    """The janitor's full recompute of the hot ranks, `runs` times in a row (in this process,
    as the supervisor's janitor does it); the median like latency on the idle server, then
    while the recomputes run."""
    from memedroid.db import Database
    from memedroid.pipeline.janitor import Janitor
    from memedroid.settings import Settings
    from memedroid.storage import LocalStorage

    settings = Settings(env="test", database_url=url, storage_dir=folder / "recompute", hot_rank_interval=0)
    db = Database(settings)
    janitor = Janitor(settings, db, LocalStorage(settings.storage_dir), None, "bench/recompute")
    with psycopg.connect(url) as conn:
        recent = [row[0] for row in conn.execute("SELECT post_id FROM post_ranks WHERE hot > 0 AND slot = 0")]
    session, auth, rng = requests.Session(), system.sign_up("liker"), random.Random(7)

    def like() -> float:
        post = rng.choice(recent)
        started = time.perf_counter()
        for method in (session.put, session.delete):
            assert method(f"{system.url}/api/v1/posts/{post}/like", headers=auth, timeout=10).status_code == 204
        return (time.perf_counter() - started) * 500  # ms per request

    idle = [like() for _ in range(300)]
    durations: list[float] = []
    ranked: list[int] = []

    def run() -> None:
        while len(durations) < runs:
            started = time.perf_counter()
            actions = janitor.tick()
            if actions["hot_ranked"]:  # else a server's janitor held the lock: again
                durations.append(time.perf_counter() - started)
                ranked.append(actions["hot_ranked"])

    worker = threading.Thread(target=run)
    worker.start()
    during = []
    while worker.is_alive():
        during.append(like())
    worker.join()
    db.close()
    return {
        "seconds": statistics.median(durations),
        "ranked": statistics.median(ranked),
        "idle": statistics.median(idle),
        "during": statistics.median(during),
        "likes during": len(during),
    }


def report(results: dict[str, dict[str, float]], only: str | None) -> None:
    if only != "edge":
        report_app(results)
    print()
    r = results["proxied feed"]
    ratio = r["rps"] / r["baseline"]
    print(
        f"through nginx: the new page {r['rps']:.0f} req/s, a static file of its {r['bytes']:.0f} bytes {r['baseline']:.0f} req/s"
    )
    verdict("proxied feed / file", ratio, f">= {TARGETS['proxied']}", ratio >= TARGETS["proxied"])
    r = results["not modified"]
    ratio = r["rps"] / r["baseline"]
    print(f"straight to gunicorn: 304 {r['rps']:.0f} req/s (p50 {r['p50']:.2f} ms), /healthz {r['baseline']:.0f} req/s")
    verdict("304 / healthz", ratio, f">= {TARGETS['not modified']}", ratio >= TARGETS["not modified"])


def report_app(results: dict[str, dict[str, float]]) -> None:
    print(f"\n{'endpoint':20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'healthz req/s':>14} {'ratio':>6}")
    loads = [name for name in results if "healthz" in results[name]]
    for name in loads:
        r = results[name]
        print(f"{name:20} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['healthz']:14.0f} {r['rps'] / r['healthz']:6.2f}")
    print()
    for label, name, key in (
        ("cached feed / healthz", "feed cached", "cached"),
        ("uncached feed / healthz", "feed uncached", "uncached"),
        ("cached hot / healthz", "hot cached", "hot cached"),
        ("uncached hot / healthz", "hot uncached", "hot uncached"),
        ("uncached comments / hz", "comments uncached", "comments uncached"),
    ):
        ratio = results[name]["rps"] / results[name]["healthz"]
        verdict(label, ratio, f">= {TARGETS[key]}", ratio >= TARGETS[key])
    for label, name, key in (("page 1000 / page 1", "depth", "depth"), ("hot page 50 / page 1", "hot depth", "hot depth")):
        r = results[name]
        ratio = r["deep"] / r["first"]
        verdict(label, ratio, f"<= {TARGETS[key]}, {r['deep']:.2f} ms vs {r['first']:.2f} ms", ratio <= TARGETS[key])
    for name in ("blocks new", "blocks hot"):
        r = results[name]
        ratio = r["none"] / r["rps"]
        target = TARGETS["blocks"]
        verdict(
            f"{name[7:]}: 1,000 blocks", ratio, f"<= {target}, {r['rps']:.0f} vs {r['none']:.0f} req/s with none", ratio <= target
        )
    r = results["recompute"]
    print(f"hot recompute           {r['seconds']:.2f} s for {r['ranked']:,.0f} ranked posts (median of 5)")
    ratio = r["during"] / r["idle"]
    target = TARGETS["likes during recompute"]
    verdict(
        "like during / idle",
        ratio,
        f"<= {target}, {r['during']:.2f} ms vs {r['idle']:.2f} ms, {r['likes during']:.0f} likes",
        ratio <= target,
    )


def verdict(label: str, ratio: float, target: str, ok: bool) -> None:
    print(f"{label:24}{ratio:.2f} ({target}) {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
