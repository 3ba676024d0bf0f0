"""Redis as an optimisation only: every call degrades to "no cache" when Redis is absent,
down or slow, logs that once, and recovers by itself when Redis answers again.

Both cache tiers are bounded in bytes. In Redis, entries are written through `Cache.store`,
which counts the bytes written each minute and writes nothing beyond CACHE_BYTES (every entry
lives at most a minute, so at most twice that is ever held). In each HTTP worker, `LocalCache`
holds at most FEED_LOCAL_BYTES. And an entry nobody vouches for as shared is admitted only on
its second request: a page made for one client (an arbitrary cursor) never takes the room of
pages many readers ask for.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from memedroid import metrics
from memedroid.logs import Degradation
from memedroid.settings import Settings

log = logging.getLogger(__name__)

FEED_VERSION_KEY = "memedroid:feed:version"
LIKES_VERSION_KEY = "memedroid:likes:version"  # also in the keys of pages ordered by likes
VERSION_TTL = 3600  # a version key nobody bumps for this long goes (far longer than any entry under it)
SOCKET_TIMEOUT = 0.25
MAX_TTL = 60  # no entry lives longer: the byte budget counts per minute
BUDGET_KEY = "memedroid:cache:bytes:{}"

# Write an entry unless this minute's bytes would pass the budget (counted either way; an
# entry costs its key, its value and about 64 bytes of Redis's own).
_BUDGETED_SET = """
local size = string.len(KEYS[1]) + string.len(ARGV[1]) + 64
local used = redis.call('INCRBY', KEYS[2], size)
if used == size then redis.call('EXPIRE', KEYS[2], 120) end
if used > tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class Cache:
    """A Redis client that never raises: failures turn into misses (or no-ops)."""

    def __init__(self, url: str, max_bytes: int) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self._client: redis.Redis | None = None
        self.health = Degradation(
            log,
            ("cache_degraded", "redis unavailable; serving without cache"),
            ("cache_recovered", "redis is back; cache in use again"),
        )
        self._scripts: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Cache:
        return cls(settings.redis_url, settings.cache_bytes)

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
            self.health.failed(exc)
            return default
        self.health.worked()
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
            self.health.failed(exc)
            return None
        self.health.worked()
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
            self.health.failed(exc)
            return None
        self.health.worked()
        return results

    @staticmethod
    def count(cache: str, hit: bool) -> None:
        """Record a lookup's outcome in `memedroid_cache_lookups_total` (no Redis is a miss)."""
        metrics.CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()

    def store(self, key: str, value: str, ttl: int) -> None:
        """Cache `value` under `key` for `ttl` (at most MAX_TTL) seconds, within the byte budget."""
        bucket = BUDGET_KEY.format(int(time.time() // MAX_TTL))
        self.script(_BUDGETED_SET, [key, bucket], [value, min(ttl, MAX_TTL), self.max_bytes])

    def bump_feed_version(self) -> None:
        """Invalidate every cached feed page at once (their keys embed the version)."""
        self.call("incr", FEED_VERSION_KEY)


TAG_LENGTH = 16  # hex digits of a page's tag


def tag_of(data: bytes) -> str:
    """A short hash of `data`, for telling one version of a body from another."""
    return hashlib.blake2b(data, digest_size=TAG_LENGTH // 2).hexdigest()


@dataclass(frozen=True, slots=True)
class Page:
    """A rendered entry and its tag: a hash of the body, made once when it is rendered and
    kept with it, so that a hit tells its validator (the HTTP ETag) without hashing again.
    `key` is where the cache tiers keep it ("" for a page made for one reader alone)."""

    body: str
    tag: str
    key: str = ""

    @classmethod
    def of(cls, body: str, key: str = "") -> Page:
        return cls(body, tag_of(body.encode()), key)

    def packed(self) -> str:
        """How Redis keeps it: the tag, then the body."""
        return self.tag + self.body

    @classmethod
    def unpacked(cls, raw: str, key: str) -> Page:
        return cls(raw[TAG_LENGTH:], raw[:TAG_LENGTH], key)


class Doorkeeper:
    """Remembers the last `size` keys it was shown, to tell a second request from a first."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._keys: OrderedDict[int, None] = OrderedDict()

    def again(self, key: str) -> bool:
        """Whether `key` was shown lately (and remember it now)."""
        digest = hash(key)
        if digest in self._keys:
            return True
        self._keys[digest] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return False


class LocalCache:
    """A per-process memory in front of Redis for entries that may be up to `seconds` stale:
    the hottest reads then make no round trip at all. At most `max_bytes` of values (the
    oldest go first); an entry not vouched for as shared waits for its second request.
    0 seconds turns it off."""

    def __init__(self, name: str, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[float, Page]] = OrderedDict()  # oldest first
        self._bytes = 0
        self._seen = Doorkeeper()
        self._lock = threading.Lock()
        self._hits = metrics.CACHE_LOOKUPS.labels(name, "hit")
        self._misses = metrics.CACHE_LOOKUPS.labels(name, "miss")

    def get(self, key: str) -> Page | None:
        page = self.peek(key)
        if page is None:
            self._misses.inc()
        return page

    def peek(self, key: str) -> Page | None:
        """The page under `key` if it is still current; a hit is counted, a miss is not (for a
        look before the request's own, which counts it)."""
        if self.seconds <= 0:
            return None
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        self._hits.inc()
        return found[1]

    def put(self, key: str, page: Page, shared: bool = False) -> None:
        """Keep `page`; unless `shared`, only when `key` was asked for lately already."""
        if self.seconds <= 0 or len(page.body) > self.max_bytes:
            return
        with self._lock:
            if not shared and not self._seen.again(key):
                return
            now = time.monotonic()
            old = self._entries.pop(key, None)
            self._bytes += len(page.body) - (len(old[1].body) if old else 0)
            self._entries[key] = (now + self.seconds, page)
            while self._entries and (self._bytes > self.max_bytes or next(iter(self._entries.values()))[0] < now):
                _key, (_expires, dropped) = self._entries.popitem(last=False)  # the oldest, or expired
                self._bytes -= len(dropped.body)

    def clear(self) -> None:
        with self._lock:
            self._entries = OrderedDict()
            self._bytes = 0


# One round trip: the current version (the feed's, and another's as well when KEYS[2] is
# given), the entry cached under it, and on a miss how many times the entry was asked for
# lately (counted for ARGV[2] seconds).
_VERSIONED_GET = """
local version = redis.call('GET', KEYS[1]) or '0'
if KEYS[2] then version = version .. '.' .. (redis.call('GET', KEYS[2]) or '0') end
local found = redis.call('GET', ARGV[1] .. ':v' .. version)
if found then return {version, found, 0} end
local seen = redis.call('INCR', ARGV[1] .. ':seen')
if seen == 1 then redis.call('EXPIRE', ARGV[1] .. ':seen', ARGV[2]) end
return {version, false, seen}
"""


@dataclass(frozen=True)
class Lookup:
    """What `FeedCache.lookup` found: the version now (None: no Redis), the entry cached
    under it (None: a miss), and on a miss how often the key was asked for lately."""

    version: str | None
    raw: str | None
    seen: int


class FeedCache:
    """Feed pages, post bodies and comment pages, cached in Redis under keys that embed the
    feed version: bumping it (a post completes or goes) invalidates every entry at once,
    without scanning keys. An entry may embed one more version, of what else it shows (the
    likes, for pages ordered by them; a post's comments, for its thread). Pages also live in
    each process's memory (`local`) for FEED_LOCAL_SECONDS."""

    def __init__(self, cache: Cache, local: LocalCache) -> None:
        self.cache = cache
        self.local = local

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedCache:
        return cls(
            Cache.from_settings(settings), LocalCache("feed_local", settings.feed_local_seconds, settings.feed_local_bytes)
        )

    def read_through(
        self, key: str, ttl: int, render: Callable[[bool], str], shared: bool, also: str | None = None, private: bool = False
    ) -> Page:
        """The entry under `key`: from this process's memory, from Redis, or `render(stored)`
        now and cached (at once when `shared`, else from its second request within `ttl`;
        `stored` tells the renderer which). `also` names a second version key. A `private`
        entry is rendered for one reader alone: never looked up, never cached."""
        if private:
            return Page.of(render(False))
        page = self.local.get(key)
        if page is None:
            packed = f"{key}:tagged"  # not where a release before tags kept the bare body
            found = self.lookup(packed, ttl, also)
            if found.raw is not None:
                page = Page.unpacked(found.raw, key)
            else:
                stored = shared or found.seen > 1
                page = Page.of(render(stored), key)
                if stored:
                    self.store(packed, found.version, page.packed(), ttl)
            self.local.put(key, page, shared=shared)
        return page

    def lookup(self, key: str, window: int, also: str | None = None) -> Lookup:
        """The entry under `key` for the current feed version (and `also`'s); on a miss,
        sightings within `window` s."""
        found = self.cache.script(_VERSIONED_GET, [FEED_VERSION_KEY, *([also] if also else [])], [key, window])
        if not found:
            self.cache.count("feed", False)
            return Lookup(None, None, 0)
        version, raw = (value.decode() if isinstance(value, bytes) else value for value in found[:2])
        self.cache.count("feed", raw is not None)
        return Lookup(str(version), raw, int(found[2]))

    def store(self, key: str, version: str | None, raw: str, ttl: int) -> None:
        """Cache `raw` under `key` for `version` (nothing when there was no Redis to ask)."""
        if version is not None:
            self.cache.store(f"{key}:v{version}", raw, ttl)

    def changed(self, version_key: str) -> None:
        """Every entry cached under `version_key` goes."""
        self.cache.pipeline(lambda p: p.incr(version_key).expire(version_key, VERSION_TTL))

    def liked(self, version_key: str) -> None:
        """Entries cached under `version_key` go at most once a second, however many changes
        come (a storm of likes used to empty every cached `top` page at each one): the version
        becomes this second. An entry made within the second may miss that second's later
        changes, for its life at most (a page's 15 s)."""
        self.cache.call("set", version_key, int(time.time()), ex=VERSION_TTL)

    def invalidate(self) -> None:
        """Every cached page and post body goes: at once here and in Redis, within
        FEED_LOCAL_SECONDS in other processes."""
        self.cache.bump_feed_version()
        self.local.clear()
