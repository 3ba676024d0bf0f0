"""Configuration from the environment."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from memedroid.errors import ConfigError
from memedroid.settings import Settings


def test_defaults_work_on_a_laptop() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.http_bind == "127.0.0.1:8000"
    assert settings.database_url == ""  # embedded PostgreSQL
    assert settings.generated_secret and len(settings.jwt_secret_key) >= 32
    assert settings.jwt_secret_key not in repr(settings)


def test_values_are_parsed_and_bounded() -> None:
    settings = Settings.from_env({"WEB_CONCURRENCY": "3", "DB_TIMEOUT": "2.5", "STORAGE_DIR": "/srv/media", "LOG_LEVEL": "debug"})
    assert (settings.web_concurrency, settings.db_timeout, settings.storage_dir, settings.log_level) == (
        3,
        2.5,
        Path("/srv/media"),
        "DEBUG",
    )
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY='many': must be an integer"):
        Settings.from_env({"WEB_CONCURRENCY": "many"})
    with pytest.raises(ConfigError, match="BCRYPT_ROUNDS='40': must be between 4 and 16"):
        Settings.from_env({"BCRYPT_ROUNDS": "40"})
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        Settings.from_env({"LOG_LEVEL": "chatty"})


@pytest.mark.parametrize("secret", ["", "too-short"])
def test_production_refuses_a_missing_or_short_secret(secret: str) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        Settings.from_env({"MEMEDROID_ENV": "production", "JWT_SECRET_KEY": secret})
    assert Settings.from_env({"MEMEDROID_ENV": "production", "JWT_SECRET_KEY": "k" * 32}).production


def test_a_node_is_named_after_its_host_unless_told() -> None:
    assert Settings.from_env({}).node_name == socket.gethostname()
    assert Settings.from_env({"NODE_NAME": "worker-2.eu"}).node_name == "worker-2.eu"
    for bad in ("a/b", "x" * 65, "two words"):
        with pytest.raises(ConfigError, match="NODE_NAME"):
            Settings.from_env({"NODE_NAME": bad})
