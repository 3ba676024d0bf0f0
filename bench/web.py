"""Web client benchmark: the first meme painted, against a static page of the same size.

    .venv/bin/python bench/web.py [--posts 1000000] [--visits 15]

Seeds the feed benchmark's dataset (bench/feed.py: a year of posts, likes, tags, one in ten
NSFW), ranks it as the janitor does, writes real 1280 x 720 JPEGs for the first page of the hot
feed, and serves the app with gunicorn as the supervisor does, plus one route, `/bench/static`:
a page of as many bytes as the client's HTML, JavaScript and CSS (all of it, not only what
comes before the first meme), showing the same first meme in a plain `<img>`. Debian's Chromium (headless, driven by Playwright) then visits `/` and
`/bench/static` in turn, each visit in a fresh context (nothing cached) and again in the same
one (modules cached), and reads the time the first meme was painted from the browser's own
Element Timing entries, the bytes of HTML, JavaScript and CSS loaded before it, and the
layout shift (CLS) while the page loads and scrolls. Prints the medians and their ratios.
Uses an embedded PostgreSQL in a temporary folder unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from browser import ARGS, CHROMIUM, WATCH  # noqa: E402  (the browser tests' Chromium settings)
from feed import seed  # noqa: E402  (the feed benchmark's dataset)
from flask import Flask, Response  # noqa: E402
from helpers import free_port, wait_for_port  # noqa: E402
from playwright.sync_api import Browser, sync_playwright  # noqa: E402
from system import database, throwaway_redis  # noqa: E402

from memedroid.api.server import HttpServer  # noqa: E402
from memedroid.settings import Settings  # noqa: E402

TARGETS = {"paint": 2.0, "bytes": 100_000, "cls": 0.05}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
# The page, its scripts and its styles as the browser loaded them (not the API's JSON, not media).
CODE = """(before) => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
  .filter((entry) => entry.entryType === "navigation" || /\\.(js|css)$/.test(new URL(entry.name).pathname))
  .filter((entry) => entry.responseEnd <= before)
  .reduce((sum, entry) => sum + entry.decodedBodySize, 0)"""
# When the first meme (the element marked elementtiming="first-meme") was painted, in ms since
# the navigation began; and the bytes of code loaded by then.
FIRST_MEME = f"""() => new Promise((resolve) => {{
  new PerformanceObserver((list, observer) => {{
    const meme = list.getEntries().find((entry) => entry.identifier === "first-meme");
    if (!meme) return;
    observer.disconnect();
    const painted = meme.renderTime || meme.loadTime;
    resolve({{ painted, bytes: ({CODE})(painted) }});
  }}).observe({{ type: "element", buffered: true }});
}})"""


class BenchServer(HttpServer):
    """The app as the supervisor serves it, with the static page beside it."""

    static_page = b""

    def load(self) -> Flask:
        app = super().load()
        page = self.static_page
        app.add_url_rule("/bench/static", "bench_static", lambda: Response(page, mimetype="text/html"))
        return app


def static_page(meme: dict[str, Any], size: int) -> bytes:
    """A page of `size` bytes showing `meme` as the client's first card does, without script."""
    media = meme["media"]
    head = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>MemeDroid</title>'
        "<style>body{margin:0;font:16px system-ui}main{max-width:640px;margin:0 auto;padding:.75rem}"
        "img{width:100%;height:auto;display:block}</style></head><body><main>"
        f"<h2>{meme['caption']}</h2>"
        f'<img src="{media["url"]}" width="{media["width"]}" height="{media["height"]}" alt="" elementtiming="first-meme">'
    )
    tail = "</main></body></html>"
    padding = max(0, size - len(head) - len(tail) - 7)
    return f"{head}<!--{'x' * padding}-->{tail}".encode()


def write_media(url: str, storage: Path) -> None:
    """Real JPEGs at the paths of the hot feed's first page (the seed writes only rows)."""
    storage.mkdir(parents=True, exist_ok=True)
    picture = storage / "picture.jpg"
    subprocess.run(["/usr/bin/convert", "-size", "1280x720", "plasma:fractal", "-quality", "82", f"JPEG:{picture}"], check=True)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT m.path, m.thumbnail_path FROM post_ranks r JOIN posts p ON p.id = r.post_id JOIN media m ON m.id = p.media_id "
            "WHERE r.slot = 0 AND NOT p.nsfw ORDER BY r.hot DESC LIMIT 40"
        ).fetchall()
    for row in rows:
        for name in row:
            target = storage / "media" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(picture, target)


def rank(url: str, folder: Path) -> None:
    """The janitor's hot ranks, computed once as its timer would."""
    from memedroid.db import Database
    from memedroid.pipeline.janitor import Janitor
    from memedroid.storage import LocalStorage

    settings = Settings(env="test", database_url=url, storage_dir=folder / "rank", hot_rank_interval=0)
    db = Database(settings)
    try:
        while not Janitor(settings, db, LocalStorage(settings.storage_dir), None, "bench/web").tick()["hot_ranked"]:
            time.sleep(0.5)
    finally:
        db.close()


def visit(browser: Browser, url: str, again: bool) -> dict[str, float]:
    """One visit in a fresh context (and, with `again`, a second one with its cache): when the
    first meme was painted, the bytes before it and the layout shift of the load and a scroll."""
    context = browser.new_context(**PHONE)
    context.add_init_script(WATCH)
    page = context.new_page()
    try:
        for _ in range(2 if again else 1):
            page.goto(url, wait_until="commit")
            found = page.evaluate(FIRST_MEME)
        for _ in range(3):
            page.mouse.wheel(0, 800)
            page.wait_for_timeout(150)
        return {**found, "cls": page.evaluate("window.__cls"), "all bytes": page.evaluate(f"({CODE})(Infinity)")}
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--visits", type=int, default=15, help="visits of each page, in turn")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"bench/web.py needs Chromium at {CHROMIUM}: run `make setup-test`", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="memedroid-web-") as tmp, database(Path(tmp)) as url, throwaway_redis() as redis:
        folder = Path(tmp)
        print(f"seeding {args.posts:,} posts...", flush=True)
        seed(url, args.posts)
        rank(url, folder)
        write_media(url, folder / "storage")
        results = measure(url, redis, folder, args.visits)
    report(results)
    return 0


def measure(url: str, redis_url: str, folder: Path, visits: int) -> dict[str, list[dict[str, float]]]:
    port = free_port()
    settings = Settings(
        env="development",
        database_url=url,
        redis_url=redis_url,
        storage_dir=folder / "storage",
        var_dir=folder / "var",
        http_bind=f"127.0.0.1:{port}",
        web_concurrency=2,
        log_level="WARNING",
        read_rate_limit="100000000/minute",
        jwt_secret_key="bench-" + "x" * 60,
    )
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        server: multiprocessing.Process | None = None
        try:
            BenchServer.static_page = b"placeholder"
            server = start(settings, port)
            first = visit(browser, f"{base}/", again=False)  # the client's bytes: the page, its scripts and styles
            meme = requests.get(f"{base}/api/v1/posts?sort=hot&limit=1", timeout=30).json()["items"][0]
            server.terminate()
            server.join()
            BenchServer.static_page = static_page(meme, int(first["all bytes"]))
            server = start(settings, port)
            results: dict[str, list[dict[str, float]]] = {"client": [], "static": [], "client warm": [], "static warm": []}
            for _ in range(visits):
                for name, path in (("client", "/"), ("static", "/bench/static")):
                    results[name].append(visit(browser, base + path, again=False))
                    results[f"{name} warm"].append(visit(browser, base + path, again=True))
            return results
        finally:
            if server is not None:
                server.terminate()
                server.join()
            browser.close()


def start(settings: Settings, port: int) -> multiprocessing.Process:
    server = multiprocessing.get_context("fork").Process(target=BenchServer(settings).run, daemon=True)
    server.start()
    wait_for_port(port, 60)
    requests.get(f"http://127.0.0.1:{port}/api/v1/posts?sort=hot", timeout=30)  # warm the workers and the cache
    return server


def report(results: dict[str, list[dict[str, float]]]) -> None:
    median = {name: {key: statistics.median(v[key] for v in runs) for key in runs[0]} for name, runs in results.items()}
    print(f"\n{len(results['client'])} visits of each page, in turn, at a phone's viewport (medians):")
    for name, m in median.items():
        print(
            f"  {name:<12} first meme painted {m['painted']:6.1f} ms, {m['bytes'] / 1000:5.1f} KB of code before it "
            f"({m['all bytes'] / 1000:5.1f} KB in all), CLS {m['cls']:.3f}"
        )

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    for warm in ("", " warm"):
        ratio = median[f"client{warm}"]["painted"] / median[f"static{warm}"]["painted"]
        print(
            f"first meme, client / static{warm or ' (cold)'}: {ratio:.2f} (target <= {TARGETS['paint']}: {verdict(ratio <= TARGETS['paint'])})"
        )
    code, cls = median["client"]["bytes"], max(v["cls"] for v in results["client"] + results["client warm"])
    print(f"HTML + JS + CSS before the first meme: {code / 1000:.1f} KB (target <= 100 KB: {verdict(code <= TARGETS['bytes'])})")
    print(f"largest CLS of any client visit: {cls:.4f} (target < {TARGETS['cls']}: {verdict(cls < TARGETS['cls'])})")


if __name__ == "__main__":
    sys.exit(main())
