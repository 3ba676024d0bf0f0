"""The `memedroid` operator command (also `python -m memedroid`).

Every subcommand prints a clear result and exits non-zero on failure. Settings come from the
same environment variables as the server.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from memedroid import logs
from memedroid.db import Database
from memedroid.errors import ConfigError, MemeDroidError
from memedroid.repositories.moderation import ROLES
from memedroid.services import passwords
from memedroid.services.accounts import Accounts, email_problem, username_problem
from memedroid.settings import ENV, Settings
from memedroid.storage import open_storage

if TYPE_CHECKING:
    from memedroid.services.maintenance import Maintenance

ENV_HELP = "settings come from the environment: " + ", ".join(sorted(ENV.values()))


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from memedroid.runtime.bootstrap import prepare

    prepare(settings)
    print("database is up to date")
    return 0


def _supervisor(settings: Settings, _args: argparse.Namespace) -> int:
    share_metrics_folder(settings.var_dir / "metrics")
    from memedroid.runtime import supervisor

    return supervisor.main(settings)


def share_metrics_folder(default: Path) -> None:
    """Make every process of this supervisor write its metrics to one folder, emptied now
    (`PROMETHEUS_MULTIPROC_DIR` when the operator sets it). prometheus_client reads the
    variable when first imported, so this runs before anything imports it; spawned children
    inherit it."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess folder was set")
    folder = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(default)))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def _janitor(settings: Settings, args: argparse.Namespace, recover: bool = True) -> int:
    from memedroid.pipeline.janitor import Janitor, lease_owner

    if recover and not args.dry_run:  # one tick of a running system's janitor
        settings.check_live_orphan_grace()
    with _database(settings) as db:
        janitor = Janitor(settings, db, open_storage(settings), None, lease_owner(settings.node_name, "cli"), reclaim_node=False)
        actions = janitor.tick(dry_run=args.dry_run, recover=recover)
    verb = "would do" if args.dry_run else "did"
    print(f"janitor {verb}: " + (", ".join(f"{k}={v}" for k, v in sorted(actions.items())) or "nothing"))
    return 0


def _remove_orphans(settings: Settings, args: argparse.Namespace) -> int:
    return _janitor(settings, args, recover=False)


def _reprocess(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as db:
        requeued = _maintenance(db, settings).reprocess(None if args.failed else args.post_id)
    print(f"requeued {len(requeued)} media {requeued}; the pipeline's sweep picks them up")
    return 0


def _rehash(settings: Settings, args: argparse.Namespace) -> int:
    from memedroid.pipeline.rehash import Rehashed, rehash

    def progress(done: Rehashed) -> None:
        print(f"rehashed {done.hashed} media, {done.linked} near-duplicates, up to media id {done.last_id}", flush=True)

    with _database(settings) as db:
        done = rehash(settings, db, open_storage(settings), args.missing, args.after, progress)
    print(f"done: rehashed {done.hashed} media, {done.linked} near-duplicates found", end="")
    print(f"; skipped (rendition missing or unreadable): {done.skipped}" if done.skipped else "")
    return 0


def _maintenance(db: Database, settings: Settings) -> Maintenance:
    from memedroid.services.maintenance import Maintenance  # imports the metrics: not before the supervisor sets them up

    return Maintenance(db, open_storage(settings))


def _purge_removed(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as db:
        purged = _maintenance(db, settings).purge_removed(args.older_than)
    print(f"purged {purged['posts']} removed posts ({purged['media']} media with their files) and {purged['comments']} comments")
    return 0


def _quarantined_urls(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as db:
        urls = _maintenance(db, settings).quarantined_urls(settings.media_url, args.since)
    for url in urls:
        print(url)
    return 0


def _age(text: str) -> timedelta:
    """`30d`, `12h`, `90m` or `45s`."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an age like 30d, 12h, 90m or 45s")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def _migrate_storage(settings: Settings, args: argparse.Namespace) -> int:
    from memedroid.storage.migrate import migrate

    source = open_storage(settings)
    target = open_storage(settings.with_storage(args.to, args.endpoint)).ensure()
    try:
        done = migrate(source, target)
    except OSError as exc:
        print(f"memedroid: {exc} (run the command again: it goes on where it stopped)", file=sys.stderr)
        return 1
    print(f"copied {done.copied} files ({done.bytes} bytes), {done.present} there already; now set STORAGE_URL={args.to}")
    return 0


def _stats(settings: Settings, _args: argparse.Namespace) -> int:
    with _database(settings) as db:
        print(json.dumps(_maintenance(db, settings).stats(), indent=2))
    return 0


def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    for name, problem in (("username", username_problem(args.username)), ("email", email_problem(args.email)),
                          ("password", passwords.problem(password))):  # fmt: skip
        if problem:
            print(f"memedroid: {name} {problem}", file=sys.stderr)
            return 1
    with _database(settings) as db:
        user = Accounts(db, settings).register(args.username, args.email, password)
    print(f"created user {user.username} (id {user.id})")
    return 0


def _grant_role(settings: Settings, args: argparse.Namespace) -> int:
    from memedroid.services.moderation import Moderation  # imports the metrics: not before the supervisor sets them up

    with _database(settings) as db:
        account = Moderation.build(db, settings).grant_role(args.username, args.role)
    print(f"{account['username']} (id {account['id']}) is now {account['role']}; it counts from their next request")
    return 0


def _ban_media(settings: Settings, args: argparse.Namespace) -> int:
    from memedroid.pipeline.banning import fingerprint_file
    from memedroid.pipeline.processing import Interrupted, MediaError
    from memedroid.services.moderation import Moderation

    try:
        sha256, fingerprints = fingerprint_file(settings, Path(args.file))
    except (OSError, MediaError, Interrupted) as exc:
        print(f"memedroid: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    with _database(settings) as db:
        banned_id = Moderation.build(db, settings).ban_file(sha256, fingerprints, args.reason)
    print(f"banned {args.file} (entry {banned_id}, {len(fingerprints)} pictures hashed)")
    return 0


def _proxy(settings: Settings, args: argparse.Namespace) -> int:
    from memedroid.runtime.proxy import Proxy

    proxy = Proxy.from_settings(settings, args.listen)
    if args.print:
        print(proxy.render())
        return 0
    command = proxy.command()
    print(f"nginx on {args.listen} in front of {proxy.upstream} (configuration: {proxy.folder / 'nginx.conf'})", flush=True)
    os.execv(command[0], command)  # nginx takes this process: signals and the exit status are its own


class _database:
    """A pool for one command, closed afterwards. Its sessions are not bounded by the running
    system's statement and lock timeouts: an operator's chore may take long, and is watched."""

    def __init__(self, settings: Settings) -> None:
        if not settings.database_url:
            raise ConfigError("DATABASE_URL must be set (or use `make run`, which starts the embedded database)")
        self.db = Database(settings.replace(db_pool_size=2), bounded=False)

    def __enter__(self) -> Database:
        return self.db

    def __exit__(self, *_exc: Any) -> None:
        self.db.close()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="memedroid", description="Operate MemeDroid.", epilog=ENV_HELP)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., int], summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary, epilog=ENV_HELP)
        sub.set_defaults(run=run)
        return sub

    command("migrate", _migrate, "Apply pending database migrations.")
    command("supervisor", _supervisor, "Run the whole system (same as bin/memedroid-supervisor).")
    janitor = command("janitor", _janitor, "Run the janitor: recover expired leases, flush views, delete orphan files.")
    janitor.add_argument("--once", action="store_true", required=True, help="run one tick and exit")
    janitor.add_argument("--dry-run", action="store_true", help="change nothing; list the orphan files it would delete")
    orphans = command("remove-orphans", _remove_orphans, "Delete files no row needs (older than ORPHAN_GRACE_SECONDS).")
    orphans.add_argument("--dry-run", action="store_true", help="list them without deleting")
    reprocess = command("reprocess", _reprocess, "Give failed media another set of attempts.")
    which = reprocess.add_mutually_exclusive_group(required=True)
    which.add_argument("post_id", nargs="?", type=int, help="the post whose media to reprocess")
    which.add_argument("--failed", action="store_true", help="every failed media")
    rehash = command("rehash", _rehash, "Compute perceptual hashes (repost detection) from the stored renditions.")
    rehash.add_argument("--missing", action="store_true", help="only media without hashes (run again to resume)")
    rehash.add_argument("--after", type=int, default=0, metavar="ID", help="start after this media id (resume a full run)")
    purge = command("purge-removed", _purge_removed, "Delete for good what moderators removed long ago, files and all.")
    purge.add_argument("--older-than", type=_age, required=True, metavar="AGE", help="removed at least this long ago: 30d, 12h")
    urls = command(
        "quarantined-urls", _quarantined_urls, "Print the URLs of media files taken from the public (for a CDN to purge)."
    )
    urls.add_argument("--since", type=_age, required=True, metavar="AGE", help="taken this long ago at most: 1h, 2d")
    move = command("migrate-storage", _migrate_storage, "Copy every stored file into another store, checked by hash; resumable.")
    move.add_argument("--to", required=True, metavar="URL", help="s3://bucket/prefix or file:///path")
    move.add_argument("--endpoint", metavar="URL", help="the target's S3_ENDPOINT_URL (default: the current one)")
    proxy = command("proxy", _proxy, "Run nginx in front of the app (HTTP_BIND): micro-cache, media files, buffered uploads.")
    proxy.add_argument("--listen", default="127.0.0.1:8080", metavar="ADDRESS", help="where nginx listens (default %(default)s)")
    proxy.add_argument("--print", action="store_true", help="print the configuration instead of running nginx")
    command("stats", _stats, "Print media counts by status, the backlog and storage use (JSON).")
    create = command("create-user", _create_user, "Create an account.")
    create.add_argument("username")
    create.add_argument("email")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    grant = command("grant-role", _grant_role, "Give an account a role (written to the moderation log).")
    grant.add_argument("username")
    grant.add_argument("role", choices=ROLES)
    ban = command("ban-media", _ban_media, "Put a file on the banned list: its bytes, and anything that looks like it.")
    ban.add_argument("--file", required=True, help="the image or video to ban")
    ban.add_argument("--reason", default="banned by the operators", help="why (the moderation log shows it)")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_level, role="supervisor" if args.command == "supervisor" else "cli")
        return int(args.run(settings, args))
    except ConfigError as exc:
        print(f"memedroid: {exc}", file=sys.stderr)
        return 2
    except MemeDroidError as exc:
        print(f"memedroid: {exc.detail}", file=sys.stderr)
    except psycopg.Error as exc:
        print(f"memedroid: the database failed: {exc}".rstrip(), file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        print(f"memedroid: {exc.cmd[0]} failed with exit code {exc.returncode}", file=sys.stderr)
    return 1
