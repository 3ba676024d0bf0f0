"""Configuration: one frozen `Settings` built from the environment, shared by every process."""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
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
    storage_dir: Path = ROOT / "storage"
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
    db_pool_size: int = 5
    db_timeout: float = 5.0
    max_request_bytes: int = 1024 * 1024
    generated_secret: bool = False

    @property
    def production(self) -> bool:
        return self.env == "production"

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

    def warn_if_generated_secret(self) -> None:
        if self.generated_secret:
            logging.getLogger(__name__).warning(
                "JWT_SECRET_KEY is not set: using a random key, so tokens die with this process",
                extra={"event": "generated_jwt_secret"},
            )

    def replace(self, **changes: object) -> Settings:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# Field name -> environment variable. The README's configuration table mirrors this.
ENV: dict[str, str] = {
    "env": "MEMEDROID_ENV",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "storage_dir": "STORAGE_DIR",
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
    "db_pool_size": "DB_POOL_SIZE",
    "db_timeout": "DB_TIMEOUT",
    "max_request_bytes": "MAX_REQUEST_BYTES",
}

_BOUNDS: dict[str, tuple[float, float]] = {
    "access_token_seconds": (30, 24 * 3600),
    "refresh_token_seconds": (60, 365 * 24 * 3600),
    "bcrypt_rounds": (4, 16),
    "web_concurrency": (1, 256),
    "web_threads": (1, 256),
    "db_pool_size": (1, 200),
    "db_timeout": (0.1, 300),
    "max_request_bytes": (1024, 1 << 34),
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
    if name == "log_level":
        raw = raw.upper()
        if raw not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"{var}={raw!r}: must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return raw
