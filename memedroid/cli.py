"""The `memedroid` operator command (also `python -m memedroid`)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import psycopg

from memedroid import logs
from memedroid.errors import ConfigError
from memedroid.settings import ENV, Settings

ENV_HELP = "settings come from the environment: " + ", ".join(sorted(ENV.values()))


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from memedroid.supervisor import prepare

    settings, embedded = prepare(settings)
    if embedded is not None:
        embedded.stop()
    print("database is up to date")
    return 0


def _supervisor(settings: Settings, _args: argparse.Namespace) -> int:
    from memedroid import supervisor

    return supervisor.main(settings)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="memedroid", description="Operate MemeDroid.", epilog=ENV_HELP)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "migrate", help="apply pending database migrations", description="Apply pending migrations.", epilog=ENV_HELP
    ).set_defaults(run=_migrate)
    commands.add_parser(
        "supervisor",
        help="run the whole system (same as bin/memedroid-supervisor)",
        description="Run the HTTP server and pipeline processes under one supervisor.",
        epilog=ENV_HELP,
    ).set_defaults(run=_supervisor)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"memedroid: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, role="supervisor" if args.command == "supervisor" else "cli")
    try:
        return int(args.run(settings, args))
    except psycopg.Error as exc:
        print(f"memedroid: the database failed: {exc}".rstrip(), file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        print(f"memedroid: {exc.cmd[0]} failed with exit code {exc.returncode}", file=sys.stderr)
    return 1
