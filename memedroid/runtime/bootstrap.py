"""Getting ready to serve: the embedded PostgreSQL and Redis when none is configured, and the
schema migrated. Used by the supervisor and by `memedroid migrate`."""

from __future__ import annotations

from contextlib import ExitStack

from memedroid.runtime import migrations
from memedroid.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from memedroid.settings import Settings

Embedded = EmbeddedPostgres | EmbeddedRedis


def prepare(settings: Settings, services: ExitStack | None = None, started: list[Embedded] | None = None) -> Settings:
    """Start an embedded PostgreSQL when no `DATABASE_URL` is given (and, with `services`, a
    local Redis when no `REDIS_URL` is), then migrate. `services` stops them on exit; `started`
    gets them, for the supervisor to watch."""
    stack = services or ExitStack()
    ours: list[Embedded] = []
    if not settings.database_url:
        postgres = EmbeddedPostgres(settings.var_dir / "pgdata")
        settings = settings.replace(database_url=postgres.start())
        stack.callback(postgres.stop)
        ours.append(postgres)
    if services is not None and not settings.redis_url:
        redis = EmbeddedRedis(settings.var_dir)
        settings = settings.replace(redis_url=redis.start())
        stack.callback(redis.stop)
        if settings.redis_url:  # else no redis-server is installed: no cache
            ours.append(redis)
    if started is not None:
        started += ours
    migrations.migrate(settings.database_url)
    if services is None:
        stack.close()
    return settings
