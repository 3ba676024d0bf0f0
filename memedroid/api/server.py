"""The HTTP server role: gunicorn started from Python, serving `create_app()`.

Its workers are gunicorn's threaded workers with two changes (`HeadFirstWorker`):

- A request takes a thread only once its whole head (request line and headers) has arrived.
  Until then its bytes are gathered by the worker's event loop, so clients that trickle their
  headers (slowloris) cannot hold every thread; one that takes longer than HEADER_TIMEOUT
  gets a 408. (A slow *body* still holds its thread while it is read: in production a
  buffering reverse proxy stands in front.)
- Probes (`/healthz`, `/readyz`, `/metrics`) get a thread of their own: when every request
  thread waits (on a database lock, say), the probes still answer, and say why.
- gunicorn's own answers to requests it cannot parse (400, 414, 431, ...) are problem details
  with a request id and a JSON access line, like every other error, not HTML.
"""

from __future__ import annotations

import json
import logging
import re
import selectors
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as parse_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from memedroid import logs
from memedroid.api.app import create_app
from memedroid.settings import Settings
from memedroid.transport import Pipeline

log = logging.getLogger("memedroid.access")

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 64 * 1024  # beyond this gunicorn's parser refuses the head (431) anyway
PROBE = re.compile(rb"(GET|HEAD) /(healthz|readyz|metrics)[ ?]")
# gunicorn's parse errors and what a client is told; any other parse error is a 400.
PARSE_ERRORS: dict[type[Exception], tuple[int, str]] = {
    parse_errors.LimitRequestLine: (414, "URI Too Long"),
    parse_errors.LimitRequestHeaders: (431, "Request Header Fields Too Large"),
    parse_errors.UnsupportedTransferCoding: (501, "Not Implemented"),
    parse_errors.ExpectationFailed: (417, "Expectation Failed"),
    parse_errors.ForbiddenProxyRequest: (403, "Forbidden"),
}


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
            "worker_class": HeadFirstWorker,
            "timeout": 60,
            "graceful_timeout": max(1, s.graceful_timeout - 5),
            "keepalive": 5,
            "proc_name": "memedroid: http",
            "accesslog": None,  # the app writes its own JSON access line
            "logger_class": NoAccessLine,
            "logconfig_dict": logs.logging_config(s.log_level, role="http"),
            "limit_request_line": 8190,
            "control_socket_disable": True,
            "when_ready": lambda _arbiter: self.ready(),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Runs in each forked worker: its own app and pool, the pipeline's channels inherited."""
        return create_app(self.settings, self.pipeline)


class NoAccessLine(glogging.Logger):
    """gunicorn's logger without its access line: the app writes its own. (With a logging
    configuration set, gunicorn would build its line's fields for every request.)"""

    def access(self, *_args: Any) -> None:
        pass


class HeadFirstWorker(ThreadWorker):
    """gthread, with request heads gathered in the event loop and problem+json parse errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads: dict[TConn, tuple[bytearray, float]] = {}  # connections still sending their head
        self.probes: ThreadPoolExecutor | None = None

    def init_process(self) -> None:
        self.probes = ThreadPoolExecutor(1, thread_name_prefix="probe")  # in the forked worker: no thread before fork
        super().init_process()

    def enqueue_req(self, conn: TConn) -> None:
        """Hand the connection to a thread once its request head is complete."""
        if self.cfg.is_ssl or conn.is_http2 or self.cfg.http2_cleartext != "off":
            super().enqueue_req(conn)
            return
        head, deadline = self.heads.pop(conn, None) or (bytearray(), time.monotonic() + self.app.settings.header_timeout)
        if conn.parser is not None:
            head += conn.parser.unreader.take_buffered()  # read ahead by the previous request
        try:
            while HEAD_END not in head and len(head) < MAX_HEAD:
                data = conn.sock.recv(MAX_HEAD, socket.MSG_DONTWAIT)
                if not data:
                    break  # the client closed: the parser will see it
                head += data
        except BlockingIOError:
            self.heads[conn] = (head, deadline)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, lambda _sock: self._more_head(conn))
            return
        except OSError:
            self.nr_conns -= 1
            conn.close()
            return
        conn.init()
        conn.parser.unreader.unread(bytes(head))
        if self.probes is not None and PROBE.match(head):
            done = self.probes.submit(self.handle, conn)  # as gthread's enqueue_req does, on the probes' own thread
            done.add_done_callback(lambda future: self.method_queue.defer(self.finish_request, conn, future))
            return
        super().enqueue_req(conn)

    def _more_head(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        self.enqueue_req(conn)

    def murder_pending(self) -> None:
        """Also answer 408 to connections whose head is overdue, and close them."""
        super().murder_pending()
        now = time.monotonic()
        for conn in [conn for conn, (_head, deadline) in self.heads.items() if deadline < now]:
            del self.heads[conn]
            self.poller.unregister(conn.sock)
            _answer(conn.sock, 408, "Request Timeout", "the request's headers took too long to arrive")
            self.nr_conns -= 1
            conn.close()

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        if not isinstance(exc, parse_errors.ParseException) or isinstance(exc, parse_errors.InvalidResponseHeader):
            super().handle_error(req, client, addr, exc)  # a bug of ours: gunicorn logs it and answers 500
            return
        status, title = next((found for kind, found in PARSE_ERRORS.items() if isinstance(exc, kind)), (400, "Bad Request"))
        _answer(client, status, title, str(exc) or title)


def _answer(sock: socket.socket, status: int, title: str, detail: str) -> None:
    """Write a problem+json answer on a connection that closes after it, and log it (a warning,
    as gunicorn does for requests it cannot parse)."""
    request_id = logs.sane_request_id(None)
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail, "request_id": request_id})
    head = (
        f"HTTP/1.1 {status} {title}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
        f"X-Request-ID: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    try:
        sock.send((head + body).encode(), socket.MSG_DONTWAIT)
    except OSError:
        pass  # the client is gone
    log.warning(
        "request refused before the app",
        extra={"event": "request", "method": None, "path": None, "status": status, "duration_ms": None,
               "user_id": None, "request_id": request_id, "error": detail},
    )  # fmt: skip


def serve(settings: Settings, ready: Callable[[], None], pipeline: Pipeline | None = None) -> None:
    """Child-process entry: run gunicorn until it is told to stop."""
    HttpServer(settings, ready, pipeline).run()
