"""Streaming `multipart/form-data` for uploads: the file part goes straight to `storage/raw/`
while it is hashed, in one pass, never buffered whole in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from memedroid.api.validation import text_problem
from memedroid.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationError
from memedroid.services.publishing import Received
from memedroid.storage import StoredUpload, UploadSink

FILE_FIELD = "file"
MAX_FIELD_BYTES = 16 * 1024
MAX_PARTS = 32
READ_BYTES = 64 * 1024
DECODER_BUFFER = 4 * READ_BYTES  # what the decoder may hold while it looks for a boundary
FORM_OVERHEAD = 64 * 1024 + MAX_PARTS * MAX_FIELD_BYTES  # what may surround the file in a body


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
        _decode(sink, limit, boundary.encode("latin-1"), form)
    except BaseException:
        form.discard()
        raise
    assert form.upload is not None  # _decode refuses a body without one
    return Received(form.upload, form.fields)


def _decode(make_sink: Callable[[int], UploadSink], limit: int, boundary: bytes, form: UploadForm) -> None:
    decoder = MultipartDecoder(boundary, max_form_memory_size=DECODER_BUFFER, max_parts=MAX_PARTS)
    part: Field | File | None = None
    text = bytearray()
    sink: UploadSink | None = None
    stream = request.stream
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
