"""Member benchmark: what a signed-in reader's page costs the app, against an anonymous one.

    .venv/bin/python bench/member.py [--requests 1000] [--rounds 5] [--posts 1000]

In process (the WSGI app called directly, as `bench/overhead.py` does), on a seeded database:
the first `new` page for an anonymous reader and for a signed-in one (who likes a few posts),
both as shipped (the page from the HTTP worker's memory), alternating rounds. Prints the
median CPU time of this process per request, which leaves out PostgreSQL's and Redis's own
(`bench/feed.py` measures those under wrk), the database round trips per request, and the
ratio. Uses an embedded PostgreSQL in a temporary folder unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import bearer, seed, signed_up  # noqa: E402
from system import database, throwaway_redis  # noqa: E402

from memedroid.api.app import create_app  # noqa: E402
from memedroid.settings import Settings  # noqa: E402

TARGET = 0.7  # anonymous / signed-in CPU per page (issue 29: "≥ 0.7")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and reader")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--posts", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memedroid-member-") as tmp, database(Path(tmp)) as url, throwaway_redis() as redis:
        ids = seed(url, args.posts)
        settings = Settings(
            env="test", database_url=url, redis_url=redis, storage_dir=Path(tmp) / "storage", bcrypt_rounds=4,
            jwt_secret_key="bench-" * 8, read_rate_limit="100000000/minute",
        )  # fmt: skip
        client = create_app(settings).test_client()
        member = bearer(signed_up(client, "member")["access_token"])
        for post in ids[-5:]:
            client.put(f"/api/v1/posts/{post}/like", headers=member)
        readers = {"anonymous": {}, "signed in": member}
        for headers in readers.values():  # the page cached, the connections open
            for _ in range(5):
                client.get("/api/v1/posts", headers=headers)
        trips = {name: round_trips(client, headers) for name, headers in readers.items()}
        cpu: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.rounds):
            for name, headers in readers.items():
                started = time.process_time()
                for _ in range(args.requests):
                    client.get("/api/v1/posts", headers=headers)
                cpu[name].append((time.process_time() - started) * 1000 / args.requests)
    anonymous, signed_in = (statistics.median(cpu[name]) for name in readers)
    for name in readers:
        print(f"{name:>10}: {statistics.median(cpu[name]):.3f} ms of CPU a page, {trips[name]} database round trips")
    ratio = anonymous / signed_in
    print(f"anonymous / signed in: {ratio:.2f} (target ≥ {TARGET}: {'met' if ratio >= TARGET else 'missed'})")
    return 0


def round_trips(client: object, headers: dict[str, str]) -> int:
    """The database round trips of one cached page (psycopg's commands and queries sent)."""
    import psycopg

    sent = 0
    original = psycopg.Connection._exec_command  # BEGIN, COMMIT
    execute = psycopg.Cursor.execute

    def command(self: object, *a: object, **k: object) -> object:
        nonlocal sent
        sent += 1
        return original(self, *a, **k)  # type: ignore[arg-type]

    def query(self: object, *a: object, **k: object) -> object:
        nonlocal sent
        sent += 1
        return execute(self, *a, **k)  # type: ignore[arg-type]

    psycopg.Connection._exec_command, psycopg.Cursor.execute = command, query  # type: ignore[method-assign]
    try:
        client.get("/api/v1/posts", headers=headers)  # type: ignore[attr-defined]
    finally:
        psycopg.Connection._exec_command, psycopg.Cursor.execute = original, execute  # type: ignore[method-assign]
    return sent


if __name__ == "__main__":
    sys.exit(main())
