"""Overhead benchmark: the fixed cost of a request, against a bare Flask route.

    .venv/bin/python bench/overhead.py [--seconds 3] [--rounds 9] [--connections 32] [--requests 20000]

Two parts, in one run:

- **Over HTTP**: a bare Flask app returning `{"status": "ok"}` from one route, served by the
  same gunicorn worker class, workers and threads as MemeDroid, and the real supervisor
  (defaults: 2 HTTP workers × 4 threads, `LOG_LEVEL=INFO`, its JSON log written to a file)
  on a database of 1,000 posts. Both stay up; each round loads the bare route, MemeDroid's
  `/healthz` and the first feed page (served from the HTTP worker's memory or Redis, as
  shipped) with wrk in turn, and compares each with the bare runs on either side of it. The
  median round's ratios are printed, with the CPU time the servers' HTTP processes spent per
  request. On two cores or more, the servers, PostgreSQL and Redis run on all but the first
  core and wrk on the first, so that the load generator does not compete with what it loads.
- **In process**: the WSGI app called directly, each request hook, the view and the access
  line's pieces timed, against the bare app: where the microseconds go.
Uses an embedded PostgreSQL in a temporary folder unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from feed import seed, wrk  # noqa: E402
from helpers import free_port, wait_for_port  # noqa: E402
from system import System, database, throwaway_redis  # noqa: E402

TARGETS = {"healthz": 0.8, "feed": 0.7}
SERVER = {
    "WORKERS": "1",
    "WEB_CONCURRENCY": "2",
    "WEB_THREADS": "4",
    "LOG_LEVEL": "INFO",
    "FEED_LOCAL_SECONDS": "1",
    "READ_RATE_LIMIT": "100000000/minute",  # checked (and paid for) on every read, never hit
}


def bare_app() -> Any:
    from flask import Flask

    app = Flask("bare")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve_bare() -> None:
    """`--serve-bare`: the bare app under MemeDroid's own gunicorn configuration."""
    from memedroid.api.server import HttpServer
    from memedroid.settings import Settings

    class BareServer(HttpServer):
        def load(self) -> Any:
            return bare_app()

    BareServer(Settings.from_env()).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20000, help="requests per in-process timing")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--in-process", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare()
        return 0
    if args.in_process:
        in_process(args.in_process, args.requests)
        return 0
    if shutil.which("wrk") is None:
        print("bench/overhead.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:  # the servers (and what they use) on one core, wrk on another: less noise
        os.sched_setaffinity(0, cores[1:])
    with tempfile.TemporaryDirectory(prefix="memedroid-overhead-") as tmp, database(Path(tmp)) as url, throwaway_redis() as redis:
        seed(url, 1000)
        env = {**SERVER, "DATABASE_URL": url, "REDIS_URL": redis}
        over_http(Path(tmp), env, args, cores[:1] if len(cores) >= 2 else cores)
        # In a process of its own: metrics shared between processes, as under the supervisor.
        shared = {"STORAGE_DIR": f"{tmp}/in-process", "PROMETHEUS_MULTIPROC_DIR": f"{tmp}/metrics"}
        Path(shared["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        command = [sys.executable, __file__, "--in-process", tmp, "--requests", str(args.requests)]
        subprocess.run(command, env={**os.environ, **env, **shared}, check=True)
    return 0


# --- over HTTP -------------------------------------------------------------------------------


def over_http(folder: Path, env: dict[str, str], args: argparse.Namespace, wrk_cores: list[int]) -> None:
    (folder / "system").mkdir()
    system = None
    bare_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare"],
        env={**os.environ, **env, "HTTP_BIND": f"127.0.0.1:{bare_port}", "LOG_LEVEL": "WARNING"},
    )
    try:
        system = System(env, folder / "system").wait_ready()
        bare_url = f"http://127.0.0.1:{bare_port}/healthz"
        wait_for_port(bare_port)
        bare_http = [psutil.Process(bare.pid), *psutil.Process(bare.pid).children()]
        loads = {"healthz": f"{system.url}/healthz", "feed": f"{system.url}/api/v1/posts"}
        for url in (bare_url, *loads.values()):
            requests.get(url)
            wrk(url, 2, args.connections)  # warm up
        os.sched_setaffinity(0, wrk_cores)  # wrk, started from here from now on
        before = load(bare_url, bare_http, args)
        rounds: dict[str, list[dict[str, float]]] = defaultdict(list)
        for _ in range(args.rounds):
            runs = {name: load(url, system.role("http"), args) for name, url in loads.items()}
            after = load(bare_url, bare_http, args)
            for name, run in runs.items():
                rounds[name].append(
                    {**run, "bare": (before["rps"] + after["rps"]) / 2, "bare_cpu": (before["cpu"] + after["cpu"]) / 2}
                )
            before = after
    finally:
        bare.terminate()
        bare.wait()
        if system is not None:
            system.stop()
    print(
        f"\n{'over HTTP (wrk)':16} {'req/s':>7} {'bare':>7} {'ratio':>6}  {'rounds':30} {'CPU µs/req':>10} {'bare':>5} {'ratio':>6}"
    )
    for name, measured in rounds.items():
        ratios = [r["rps"] / r["bare"] for r in measured]
        median = sorted(measured, key=lambda r: r["rps"] / r["bare"])[len(measured) // 2]
        ratio = median["rps"] / median["bare"]
        cpu = statistics.median(r["cpu"] for r in measured)
        bare_cpu = statistics.median(r["bare_cpu"] for r in measured)
        print(
            f"{name + ' / bare':16} {median['rps']:7.0f} {median['bare']:7.0f} {ratio:6.2f}  "
            f"{' '.join(f'{r:.2f}' for r in ratios):30} {cpu:10.0f} {bare_cpu:5.0f} {bare_cpu / cpu:6.2f}  "
            f"(target >= {TARGETS[name]}) {'ok' if ratio >= TARGETS[name] else 'MISSED'}"
        )


def load(url: str, server: list[psutil.Process], args: argparse.Namespace) -> dict[str, float]:
    """A wrk run, with the CPU time the server's processes spent per request (µs): a figure
    that other tenants of the machine disturb far less than requests per second."""
    spent = cpu_seconds(server)
    run = wrk(url, args.seconds, args.connections)
    return {**run, "cpu": (cpu_seconds(server) - spent) / run["requests"] * 1e6}


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


# --- in process ------------------------------------------------------------------------------


def in_process(folder: Path, count: int) -> None:
    """Call each app's WSGI callable directly; time every hook and the view of MemeDroid's."""
    from memedroid import logs
    from memedroid.api.app import create_app

    logs.configure("INFO", role="http")
    sys.excepthook = sys.__excepthook__  # a failure of the benchmark goes to the terminal
    sink = (folder / "in-process.log").open("w")  # the access lines: written, as in production
    for handler in logging.getLogger().handlers:
        handler.fd = sink.fileno()  # type: ignore[attr-defined]
    app = create_app()
    stages: dict[str, float] = defaultdict(float)
    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        for key, hooks in registry.items():
            registry[key] = [timed(hook, stages) for hook in hooks]
    app.view_functions = {name: timed(view, stages, "view") for name, view in app.view_functions.items()}
    bare = bare_app().wsgi_app
    print(f"\n{'in process (µs per request)':40} {'healthz':>8} {'feed':>8}")
    totals = {"bare": per_request(bare, "/healthz", count)[0]}
    rows: dict[str, dict[str, float]] = defaultdict(dict)
    for name, path in (("healthz", "/healthz"), ("feed", "/api/v1/posts")):
        per_request(app.wsgi_app, path, 1000, stages)  # fill the caches
        totals[name], spent = per_request(app.wsgi_app, path, count, stages)
        for stage, microseconds in spent.items():
            rows[stage][name] = microseconds
    print(f"{'bare Flask route, whole request':40} {totals['bare']:8.1f}")
    print(f"{'MemeDroid, whole request':40} {totals['healthz']:8.1f} {totals['feed']:8.1f}")
    for stage, cost in sorted(rows.items(), key=lambda item: -item[1].get("healthz", 0)):
        print(f"{'  ' + stage:40} {cost.get('healthz', 0):8.1f} {cost.get('feed', 0):8.1f}")
    print(f"{'  Flask, Werkzeug and the timers':40}", end="")
    for name in ("healthz", "feed"):
        print(f" {totals[name] - sum(cost.get(name, 0) for cost in rows.values()):8.1f}", end="")
    print()
    sink.close()


def timed(hook: Callable[..., Any], stages: dict[str, float], name: str | None = None) -> Callable[..., Any]:
    inner = getattr(hook, "func", hook)  # a functools.partial names what it wraps
    label = name or f"{inner.__module__.removeprefix('memedroid.')}.{inner.__qualname__}".replace(".<locals>", "")

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return hook(*args, **kwargs)
        finally:
            stages[label] += time.perf_counter() - started

    return wrapper


def per_request(
    app: Callable[..., Any], path: str, count: int, stages: dict[str, float] | None = None
) -> tuple[float, dict[str, float]]:
    """Microseconds per request, the best of 5 batches of count/5 requests (the machine is
    noisy), and the microseconds per request of each timed stage in that batch."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()

    def start_response(status: str, *_args: Any) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"{path} answered {status}")

    stages = {} if stages is None else stages
    best, best_stages, batch = float("inf"), {}, max(1, count // 5)
    for _ in range(5):
        stages.clear()
        started = time.perf_counter()
        for _ in range(batch):
            response = app(dict(environ), start_response)
            b"".join(response)
            getattr(response, "close", lambda: None)()
        spent = (time.perf_counter() - started) / batch * 1e6
        if spent < best:
            best, best_stages = spent, {stage: seconds / batch * 1e6 for stage, seconds in stages.items()}
    return best, best_stages


if __name__ == "__main__":
    sys.exit(main())
