"""The HTTP server role: gunicorn started from Python, serving `create_app()`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from memedroid import logs
from memedroid.app import create_app
from memedroid.settings import Settings
from memedroid.transport import Pipeline


class HttpServer(BaseApplication):
    """gunicorn's arbiter with MemeDroid's settings; each forked worker builds its own app."""

    def __init__(self, settings: Settings, ready: Callable[[], None] = lambda: None, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self.ready = ready
        self.pipeline = pipeline
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "bind": [s.http_bind],
            "workers": s.web_concurrency,
            "threads": s.web_threads,
            "worker_class": "gthread",
            "timeout": 60,
            "graceful_timeout": max(1, s.graceful_timeout - 5),
            "keepalive": 5,
            "proc_name": "memedroid: http",
            "accesslog": None,  # the app writes its own JSON access line
            "logconfig_dict": logs.logging_config(s.log_level, role="http"),
            "limit_request_line": 8190,
            "control_socket_disable": True,
            "when_ready": lambda _arbiter: self.ready(),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Runs in each forked worker: its own app and pool, the pipeline's channels inherited."""
        return create_app(self.settings, self.pipeline)


def serve(settings: Settings, ready: Callable[[], None], pipeline: Pipeline | None = None) -> None:
    """Child-process entry: run gunicorn until it is told to stop."""
    HttpServer(settings, ready, pipeline).run()
