"""Redis as an optimisation only: every call degrades to "no cache" when Redis is absent,
down or slow, logs that once, and recovers by itself when Redis answers again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from memedroid import metrics

log = logging.getLogger(__name__)

FEED_VERSION_KEY = "memedroid:feed:version"
SOCKET_TIMEOUT = 0.25


class Cache:
    """A Redis client that never raises: failures turn into misses (or no-ops)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: redis.Redis | None = None
        self._degraded = False
        self._lock = threading.Lock()
        self._scripts: dict[str, Any] = {}

    @property
    def client(self) -> redis.Redis | None:
        if not self.url:
            return None
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                health_check_interval=30,
            )
        return self._client

    def call(self, method: str, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        """`client.<method>(*args, **kwargs)`, or `default` when there is no working Redis."""
        client = self.client
        if client is None:
            return default
        try:
            value = getattr(client, method)(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            self._degrade(exc)
            return default
        self._recover()
        return value

    def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script by its SHA (sent in full only the first time)."""
        client = self.client
        if client is None:
            return None
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        try:
            value = script(keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            self._degrade(exc)
            return None
        self._recover()
        return value

    def pipeline(self, build: Callable[[Any], Any]) -> list[Any] | None:
        """Queue commands with `build(pipe)` and run them in one round trip; None on failure."""
        client = self.client
        if client is None:
            return None
        try:
            pipe = client.pipeline(transaction=False)
            build(pipe)
            results: list[Any] = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._degrade(exc)
            return None
        self._recover()
        return results

    @staticmethod
    def count(cache: str, hit: bool) -> None:
        """Record a lookup's outcome in `memedroid_cache_lookups_total` (no Redis is a miss)."""
        metrics.CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()

    def bump_feed_version(self) -> None:
        """Invalidate every cached feed page at once (their keys embed the version)."""
        self.call("incr", FEED_VERSION_KEY)

    def _degrade(self, exc: BaseException) -> None:
        with self._lock:
            if self._degraded:
                return
            self._degraded = True
        log.warning("redis unavailable; serving without cache", extra={"event": "cache_degraded", "error": str(exc)})

    def _recover(self) -> None:
        if self._degraded:
            with self._lock:
                if not self._degraded:
                    return
                self._degraded = False
            log.info("redis is back; cache in use again", extra={"event": "cache_recovered"})


class LocalCache:
    """A per-process memory in front of Redis for entries that may be up to `seconds` stale:
    the hottest reads then make no round trip at all. Bounded; 0 seconds turns it off."""

    def __init__(self, name: str, seconds: float, max_entries: int = 1024) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._hits = metrics.CACHE_LOOKUPS.labels(name, "hit")
        self._misses = metrics.CACHE_LOOKUPS.labels(name, "miss")

    def get(self, key: str) -> str | None:
        if self.seconds <= 0:
            return None
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            self._misses.inc()
            return None
        self._hits.inc()
        return found[1]

    def put(self, key: str, value: str) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            now = time.monotonic()
            if len(self._entries) >= self.max_entries:  # readers keep using the old dict meanwhile
                fresh = {k: entry for k, entry in self._entries.items() if entry[0] >= now}
                self._entries = fresh if len(fresh) < self.max_entries else {}
            self._entries[key] = (now + self.seconds, value)

    def clear(self) -> None:
        self._entries = {}
