"""Streaming `multipart/form-data` for uploads: the file part goes straight to `storage/raw/`
while it is hashed, in one pass, never buffered whole in memory.

A body read on a request thread must come at a pace (`Paced`): a client that stops sending for
BODY_TIMEOUT, or averages less than MIN_BODY_RATE after that long, gets a 408 and its thread
back. (Behind the shipped nginx, which buffers upload bodies, the app gets them at once.)"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO

from flask import request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from memedroid.api import services
from memedroid.api.validation import text_problem
from memedroid.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    UnsupportedMediaType,
    ValidationError,
)
from memedroid.services.publishing import Received
from memedroid.settings import Settings
from memedroid.storage import StoredUpload, UploadSink

FILE_FIELD = "file"
MAX_FIELD_BYTES = 16 * 1024
MAX_PARTS = 32
READ_BYTES = 64 * 1024
DECODER_BUFFER = 4 * READ_BYTES  # what the decoder may hold while it looks for a boundary
FORM_OVERHEAD = 64 * 1024 + MAX_PARTS * MAX_FIELD_BYTES  # what may surround the file in a body
MIN_BODY_RATE = 8 * 1024  # bytes a second a body must average once BODY_TIMEOUT has passed (a 2G link sends 30 KB)


class Uploads:
    """The uploads one HTTP worker reads at once: at most half of its request threads (a body
    holds its thread while it comes), and UPLOAD_CONCURRENCY of one account's; past either, the
    upload is refused before a byte of it is read (503, or 429 for the account)."""

    def __init__(self, settings: Settings) -> None:
        self.slots = threading.BoundedSemaphore(max(1, settings.web_threads // 2))
        self.per_account = settings.upload_concurrency
        self.accounts: Counter[int] = Counter()
        self.lock = threading.Lock()

    @contextmanager
    def admitted(self, user_id: int) -> Iterator[None]:
        with self.lock:
            if self.accounts[user_id] >= self.per_account:
                raise TooManyRequests(f"at most {self.per_account} uploads of yours at once", retry_after=5)
            if not self.slots.acquire(blocking=False):
                raise ServiceUnavailable("too many uploads are coming in right now; try again shortly", retry_after=5)
            self.accounts[user_id] += 1
        try:
            yield
        finally:
            with self.lock:
                self.accounts[user_id] -= 1
                if not self.accounts[user_id]:
                    del self.accounts[user_id]
            self.slots.release()


@dataclass
class UploadForm:
    upload: StoredUpload | None = None
    fields: dict[str, list[str]] = field(default_factory=dict)

    def discard(self) -> None:
        if self.upload is not None:
            self.upload.drop()


def read_upload(sink: Callable[[int], UploadSink], limit: int) -> Received:
    """Read the request body: text fields into memory, the one `file` part into a `sink` of
    storage (made for at most `limit` bytes).

    Raises 415 for a body that is not multipart, 413 past `limit` bytes of file (leaving
    nothing on disk), 400 for a malformed body or unexpected parts.
    """
    content_type, options = parse_options_header(request.headers.get("Content-Type", ""))
    boundary = options.get("boundary", "")
    if content_type != "multipart/form-data" or not boundary:
        raise UnsupportedMediaType("expected a multipart/form-data body with a 'file' part")
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        raise PayloadTooLarge(f"the file is larger than the limit of {limit} bytes")
    request.max_content_length = limit + FORM_OVERHEAD
    form = UploadForm()
    try:
        with Paced(request.stream, services().settings.body_timeout) as paced:
            _decode(sink, limit, boundary.encode("latin-1"), form, paced)
    except BaseException:
        form.discard()
        raise
    assert form.upload is not None  # _decode refuses a body without one
    return Received(form.upload, form.fields)


class Paced:
    """A request body's reads, refused (408) when the client stops sending for `idle` seconds
    or, once that long has passed, averages less than MIN_BODY_RATE: a slow body must not hold
    a request thread for as long as its sender likes. gunicorn reads a body in whole chunks, so
    a watchdog judges the pace while a read waits, and ends the read (the socket's reading side
    shut) when it falls behind; the request then gets its 408."""

    def __init__(self, stream: IO[bytes], idle: float) -> None:
        self.stream, self.idle = stream, idle
        self.started = time.monotonic()
        self.received = 0
        self.behind = threading.Event()  # the watchdog ended the body
        self.done = threading.Event()
        self.sock: socket.socket | None = request.environ.get("gunicorn.socket")
        if self.sock is not None:
            self.sock.settimeout(idle)  # gunicorn makes it blocking again for the connection's next request
            threading.Thread(target=self._watch, name="body-pace", daemon=True).start()

    def __enter__(self) -> Paced:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done.set()

    def _watch(self) -> None:
        assert self.sock is not None
        while not self.done.wait(0.5):
            elapsed = time.monotonic() - self.started
            if elapsed > self.idle and self.received + READ_BYTES < MIN_BODY_RATE * elapsed:  # the chunk it reads counts
                self.behind.set()
                with suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RD)
                return

    def read(self, size: int) -> bytes:
        waited = time.monotonic()
        try:
            chunk = self.stream.read(size)
        except (ClientDisconnected, OSError):
            if not self.behind.is_set() and time.monotonic() - waited < self.idle * 0.9:
                raise  # the client went away
            chunk = b""
        if self.behind.is_set() or (not chunk and time.monotonic() - waited >= self.idle * 0.9):
            elapsed = time.monotonic() - self.started
            raise RequestTimeout(f"the body came too slowly: {self.received} bytes in {elapsed:.0f} s")
        self.received += len(chunk)
        return chunk


def _decode(make_sink: Callable[[int], UploadSink], limit: int, boundary: bytes, form: UploadForm, stream: Paced) -> None:
    decoder = MultipartDecoder(boundary, max_form_memory_size=DECODER_BUFFER, max_parts=MAX_PARTS)
    part: Field | File | None = None
    text = bytearray()
    sink: UploadSink | None = None
    try:
        while True:
            chunk = stream.read(READ_BYTES)
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while not isinstance(event, (NeedData, Epilogue)):
                if isinstance(event, File):
                    if event.name != FILE_FIELD or sink is not None or form.upload is not None:
                        raise BadRequest(f"unexpected file part {event.name!r}: send exactly one part named 'file'")
                    part, sink = event, make_sink(limit)
                elif isinstance(event, Field):
                    if not event.name:
                        raise BadRequest("a form part has no name: each needs Content-Disposition: form-data; name=...")
                    part, text = event, bytearray()
                elif isinstance(event, Data):
                    if isinstance(part, File) and sink is not None:
                        sink.write(event.data)
                        if not event.more_data:
                            form.upload, sink = sink.finish(), None
                    elif isinstance(part, Field):
                        text += event.data
                        if len(text) > MAX_FIELD_BYTES:
                            raise BadRequest(f"field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
                        if not event.more_data:
                            form.fields.setdefault(part.name, []).append(_text(part.name, text))
                event = decoder.next_event()
            if isinstance(event, Epilogue) or not chunk:
                break
    except ValueError:
        raise BadRequest("the multipart body is malformed") from None
    except RequestEntityTooLarge:
        raise BadRequest(f"the form has too many parts (at most {MAX_PARTS}) or a malformed part") from None
    finally:
        if sink is not None:
            sink.discard()
    if not decoder.complete and form.upload is None:
        raise BadRequest("the multipart body ended early")
    if form.upload is None:
        raise BadRequest("the 'file' part is missing")


def _text(name: str, data: bytearray) -> str:
    """A form field's text: UTF-8 that PostgreSQL can store, like every JSON field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"field {name!r} is not valid UTF-8") from None
    if (problem := text_problem(text)) is not None:
        raise ValidationError({name: problem})
    return text
