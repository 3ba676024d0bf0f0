"""Configuration: one frozen `Settings` built from the environment, shared by every process."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
import math
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from memedroid.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Settings:
    """Every knob of MemeDroid. Each field maps to the environment variable named in `ENV`."""

    env: str = "development"
    database_url: str = ""
    redis_url: str = ""
    storage_dir: Path = ROOT / "storage"  # the files (or, with an object store, the workers' scratch)
    storage_url: str = ""  # file:///path (STORAGE_DIR) or s3://bucket/prefix
    s3_endpoint_url: str = ""  # an S3-compatible store's address (empty: AWS)
    s3_region: str = "us-east-1"
    var_dir: Path = ROOT / "var"
    jwt_secret_key: str = field(default="", repr=False)
    jwt_issuer: str = "memedroid"
    access_token_seconds: int = 15 * 60
    refresh_token_seconds: int = 30 * 24 * 3600
    bcrypt_rounds: int = 12
    log_level: str = "INFO"
    http_bind: str = "127.0.0.1:8000"
    web_concurrency: int = 2
    web_threads: int = 4
    header_timeout: float = 10.0  # seconds a client may take to send a request's line and headers
    body_timeout: float = 10.0  # seconds an upload's body may go without a byte (and then average less than MIN_BODY_RATE)
    upload_concurrency: int = 2  # uploads one account may send at once to one HTTP worker
    db_pool_size: int = 5
    db_timeout: float = 5.0
    db_statement_timeout: float = 10.0  # seconds a statement of the running system may run
    db_lock_timeout: float = 2.0  # seconds it may wait for a lock someone else holds
    max_clock_skew: float = 30.0  # seconds a node's clock may be off the database's
    max_request_bytes: int = 1024 * 1024
    media_url: str = "/media"
    rate_limits: bool = True
    login_rate_limit: str = "5/minute"
    login_name_rate_limit: str = "10/minute"  # sign-in attempts for one account, from every address
    upload_rate_limit: str = "60/hour"
    comment_rate_limit: str = "30/minute"
    like_rate_limit: str = "120/minute"  # likes and unlikes, of posts and comments together, per account
    report_rate_limit: str = "20/hour"
    read_rate_limit: str = "600/minute"
    feed_local_seconds: float = 1.0  # how stale a feed page one HTTP worker reuses may be
    feed_local_bytes: int = 16 * 1024 * 1024  # feed pages one HTTP worker keeps, at most
    cache_bytes: int = 64 * 1024 * 1024  # bytes of entries written to Redis per minute, at most
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-* headers are believed
    metrics_allow: str = "127.0.0.0/8,::1/128"  # networks whose clients may read /metrics
    http_max_age: int = 1  # seconds a shared cache (a proxy, a CDN) may keep an anonymous read
    http_stale_seconds: int = 5  # and serve it stale for, while it fetches a fresh one
    # The media pipeline.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    job_queue_size: int = 200
    max_backlog: int = 2000
    max_upload_bytes: int = 50 * 1024 * 1024
    disk_reserve_bytes: int = 128 * 1024 * 1024  # free space below which a node's disk counts as full
    max_image_side: int = 2048
    max_video_side: int = 1280
    max_video_seconds: int = 180
    max_video_fps: int = 120  # frames per second a video may have
    max_video_pixels: int = 24_000_000_000  # pixels a video's frames hold in all (the work of decoding it)
    thumbnail_side: int = 480
    job_timeout: int = 300
    worker_memory_bytes: int = 1024 * 1024 * 1024  # kernel ceiling on a media worker's (and each FFmpeg's) memory
    pipeline_stall_seconds: float = 30.0  # work waiting this long untouched: /readyz says not ready
    max_attempts: int = 3
    lease_seconds: int = 60
    heartbeat_seconds: float = 10.0
    stuck_after: int = 30 * 60
    janitor_interval: float = 60.0
    hot_rank_interval: float = 300.0  # seconds between recomputes of the hot ranks (a janitor tick does it when due)
    node_name: str = field(default_factory=socket.gethostname)  # this node's name in the leases its workers hold
    node_role: str = "all"  # what this node's supervisor runs: all, http (the API alone) or pipeline (the media alone)
    reposts: str = "flag"  # what a near-duplicate of an earlier post's media gets: allow | flag | reject
    orphan_grace_seconds: int = 600
    graceful_timeout: int = 30
    generated_secret: bool = False

    @property
    def production(self) -> bool:
        return self.env == "production"

    def metrics_allowed(self, address: str) -> bool:
        """Whether a client at `address` may read /metrics (METRICS_ALLOW)."""
        try:
            found = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(found in network for network in _networks(self.metrics_allow))

    @property
    def serves_http(self) -> bool:
        return self.node_role != "pipeline"

    @property
    def runs_pipeline(self) -> bool:
        """This node runs media workers, the finalizer, the janitor and the job listener."""
        return self.node_role != "http"

    @property
    def shows_reposts(self) -> bool:
        """Posts carry `repost_of` (REPOSTS is `flag` or `reject`)."""
        return self.reposts != "allow"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ` (default `os.environ`), validating every value."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, var in ENV.items():
            raw = environ.get(var, "").strip()
            if raw:
                values[name] = _convert(name, var, raw)
        settings = cls(**values)  # type: ignore[arg-type]
        return settings._checked()

    def _checked(self) -> Settings:
        if self.env not in ("development", "production", "test"):
            raise ConfigError(f"MEMEDROID_ENV must be development, production or test, not {self.env!r}")
        if self.storage_url.startswith("file://"):  # the same as STORAGE_DIR
            return dataclasses.replace(self, storage_dir=Path(self.storage_url[7:]), storage_url="")._checked()
        if len(self.jwt_secret_key.encode()) >= MIN_SECRET_BYTES:
            return self
        if self.production:
            raise ConfigError(
                f"JWT_SECRET_KEY must be set to at least {MIN_SECRET_BYTES} bytes in production "
                "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.jwt_secret_key:
            raise ConfigError(f"JWT_SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes")
        return dataclasses.replace(self, jwt_secret_key=secrets.token_urlsafe(48), generated_secret=True)

    def check_live_orphan_grace(self) -> None:
        """Refuse an ORPHAN_GRACE_SECONDS too short for a janitor beside live uploads: a partial
        upload waits up to a pool wait (DB_TIMEOUT) and a few statements to be kept under its
        raw name, so a younger one may be about to be needed. (A raw file is held by its upload
        until its row commits, whatever the grace.)"""
        least = math.ceil(2 * self.db_timeout)
        if self.orphan_grace_seconds < least:
            raise ConfigError(
                f"ORPHAN_GRACE_SECONDS={self.orphan_grace_seconds} is too short for a running system: "
                f"at least {least} (twice DB_TIMEOUT); `memedroid remove-orphans` takes any grace on a stopped one"
            )

    def warn_if_generated_secret(self) -> None:
        if self.generated_secret:
            logging.getLogger(__name__).warning(
                "JWT_SECRET_KEY is not set: using a random key, so tokens die with this process",
                extra={"event": "generated_jwt_secret"},
            )

    def with_storage(self, url: str, endpoint: str | None = None) -> Settings:
        """These settings with another store, as STORAGE_URL and S3_ENDPOINT_URL would name it."""
        url = str(_convert("storage_url", "STORAGE_URL", url))
        return self.replace(storage_url=url, s3_endpoint_url=endpoint or self.s3_endpoint_url)._checked()

    def replace(self, **changes: object) -> Settings:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@functools.cache
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


STORAGE_URL = re.compile(r"file:///.*|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[\w./-]*)?")
NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")  # no "/": a lease owner is "<node>/<boot>"

# Field name -> environment variable. The README's configuration table mirrors this.
ENV: dict[str, str] = {
    "env": "MEMEDROID_ENV",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "storage_dir": "STORAGE_DIR",
    "storage_url": "STORAGE_URL",
    "s3_endpoint_url": "S3_ENDPOINT_URL",
    "s3_region": "S3_REGION",
    "var_dir": "VAR_DIR",
    "jwt_secret_key": "JWT_SECRET_KEY",
    "jwt_issuer": "JWT_ISSUER",
    "access_token_seconds": "ACCESS_TOKEN_SECONDS",
    "refresh_token_seconds": "REFRESH_TOKEN_SECONDS",
    "bcrypt_rounds": "BCRYPT_ROUNDS",
    "log_level": "LOG_LEVEL",
    "http_bind": "HTTP_BIND",
    "web_concurrency": "WEB_CONCURRENCY",
    "web_threads": "WEB_THREADS",
    "header_timeout": "HEADER_TIMEOUT",
    "body_timeout": "BODY_TIMEOUT",
    "upload_concurrency": "UPLOAD_CONCURRENCY",
    "db_pool_size": "DB_POOL_SIZE",
    "db_timeout": "DB_TIMEOUT",
    "db_statement_timeout": "DB_STATEMENT_TIMEOUT",
    "db_lock_timeout": "DB_LOCK_TIMEOUT",
    "max_clock_skew": "MAX_CLOCK_SKEW",
    "max_request_bytes": "MAX_REQUEST_BYTES",
    "media_url": "MEDIA_URL",
    "rate_limits": "RATE_LIMITS",
    "login_rate_limit": "LOGIN_RATE_LIMIT",
    "login_name_rate_limit": "LOGIN_NAME_RATE_LIMIT",
    "upload_rate_limit": "UPLOAD_RATE_LIMIT",
    "comment_rate_limit": "COMMENT_RATE_LIMIT",
    "like_rate_limit": "LIKE_RATE_LIMIT",
    "report_rate_limit": "REPORT_RATE_LIMIT",
    "read_rate_limit": "READ_RATE_LIMIT",
    "feed_local_seconds": "FEED_LOCAL_SECONDS",
    "feed_local_bytes": "FEED_LOCAL_BYTES",
    "cache_bytes": "CACHE_BYTES",
    "trusted_proxies": "TRUSTED_PROXIES",
    "metrics_allow": "METRICS_ALLOW",
    "http_max_age": "HTTP_MAX_AGE",
    "http_stale_seconds": "HTTP_STALE_SECONDS",
    "workers": "WORKERS",
    "job_queue_size": "JOB_QUEUE_SIZE",
    "max_backlog": "MAX_BACKLOG",
    "max_upload_bytes": "MAX_UPLOAD_BYTES",
    "disk_reserve_bytes": "DISK_RESERVE_BYTES",
    "max_image_side": "MAX_IMAGE_SIDE",
    "max_video_side": "MAX_VIDEO_SIDE",
    "max_video_seconds": "MAX_VIDEO_SECONDS",
    "max_video_fps": "MAX_VIDEO_FPS",
    "max_video_pixels": "MAX_VIDEO_PIXELS",
    "thumbnail_side": "THUMBNAIL_SIDE",
    "job_timeout": "JOB_TIMEOUT",
    "worker_memory_bytes": "WORKER_MEMORY_BYTES",
    "pipeline_stall_seconds": "PIPELINE_STALL_SECONDS",
    "max_attempts": "MAX_ATTEMPTS",
    "lease_seconds": "LEASE_SECONDS",
    "heartbeat_seconds": "HEARTBEAT_SECONDS",
    "stuck_after": "STUCK_AFTER",
    "janitor_interval": "JANITOR_INTERVAL",
    "hot_rank_interval": "HOT_RANK_INTERVAL",
    "reposts": "REPOSTS",
    "node_name": "NODE_NAME",
    "node_role": "NODE_ROLE",
    "orphan_grace_seconds": "ORPHAN_GRACE_SECONDS",
    "graceful_timeout": "GRACEFUL_TIMEOUT",
}

_BOUNDS: dict[str, tuple[float, float]] = {
    "access_token_seconds": (30, 24 * 3600),
    "refresh_token_seconds": (60, 365 * 24 * 3600),
    "bcrypt_rounds": (4, 16),
    "web_concurrency": (1, 256),
    "trusted_proxies": (0, 10),
    "http_max_age": (0, 24 * 3600),
    "http_stale_seconds": (0, 24 * 3600),
    "feed_local_seconds": (0, 60),
    "feed_local_bytes": (0, 1 << 34),
    "cache_bytes": (0, 1 << 40),
    "web_threads": (1, 256),
    "header_timeout": (1, 3600),
    "body_timeout": (1, 3600),
    "upload_concurrency": (1, 100),
    "db_pool_size": (1, 200),
    "db_timeout": (0.1, 300),
    "db_statement_timeout": (0.1, 24 * 3600),
    "db_lock_timeout": (0.1, 3600),
    "max_clock_skew": (1, 24 * 3600),
    "max_request_bytes": (1024, 1 << 34),
    "workers": (1, 256),
    "job_queue_size": (1, 1_000_000),
    "max_backlog": (1, 10_000_000),
    "max_upload_bytes": (1024, 1 << 40),
    "disk_reserve_bytes": (0, 1 << 40),
    "max_image_side": (64, 16384),
    "max_video_side": (64, 8192),
    "max_video_seconds": (1, 24 * 3600),
    "max_video_fps": (1, 1000),
    "max_video_pixels": (1_000_000, 1 << 50),
    "thumbnail_side": (16, 4096),
    "job_timeout": (1, 24 * 3600),
    "worker_memory_bytes": (256 * 1024 * 1024, 1 << 40),
    "pipeline_stall_seconds": (1, 3600),
    "max_attempts": (1, 100),
    "lease_seconds": (1, 24 * 3600),
    "heartbeat_seconds": (0.1, 3600),
    "stuck_after": (1, 7 * 24 * 3600),
    "janitor_interval": (0.1, 24 * 3600),
    "hot_rank_interval": (0, 7 * 24 * 3600),
    "orphan_grace_seconds": (0, 30 * 24 * 3600),
    "graceful_timeout": (1, 3600),
}


def _convert(name: str, var: str, raw: str) -> object:
    kind = Settings.__dataclass_fields__[name].type
    try:
        if kind == "Path":
            return Path(raw).expanduser().resolve()
        if kind in ("int", "float"):
            number = int(raw) if kind == "int" else float(raw)
            low, high = _BOUNDS[name]
            if not low <= number <= high:
                raise ValueError(f"must be between {low:g} and {high:g}")
            return number
    except ValueError as exc:
        reason = str(exc) if "between" in str(exc) else f"must be {'an integer' if kind == 'int' else 'a number'}"
        raise ConfigError(f"{var}={raw!r}: {reason}") from None
    if name == "redis_url" and not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{var}={raw!r}: must start with redis://, rediss:// or unix://")
    if kind == "bool":
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"{var}={raw!r}: must be true or false")
        return raw.lower() in ("1", "true", "yes", "on")
    if name.endswith("_rate_limit") and not re.fullmatch(r"\d+\s*(/|per)\s*(second|minute|hour|day)", raw):
        raise ConfigError(f"{var}={raw!r}: must look like 5/minute (per second, minute, hour or day)")
    if name == "node_name" and not NODE_NAME.fullmatch(raw):
        raise ConfigError(f"{var}={raw!r}: must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'")
    if name == "storage_url" and not STORAGE_URL.fullmatch(raw):
        raise ConfigError(f"{var}={raw!r}: must be file:///absolute/path or s3://bucket[/prefix]")
    if name == "node_role" and raw not in ("all", "http", "pipeline"):
        raise ConfigError(f"{var}={raw!r}: must be all, http or pipeline")
    if name == "metrics_allow":
        try:
            _networks(raw)
        except ValueError as exc:
            raise ConfigError(f"{var}={raw!r}: must be networks separated by commas, e.g. 10.0.0.0/8,::1/128 ({exc})") from None
    if name == "reposts" and raw not in ("allow", "flag", "reject"):
        raise ConfigError(f"{var}={raw!r}: must be allow, flag or reject")
    if name == "log_level":
        raw = raw.upper()
        if raw not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"{var}={raw!r}: must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return raw
