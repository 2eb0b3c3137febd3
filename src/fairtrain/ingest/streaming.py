"""Request bodies as bounded streams: raw bytes, or the one file of a multipart form.

Neither path buffers the whole body nor spools plaintext to a temporary file: chunks go
straight from the socket to the vault's encryptor. The async request stream is pulled
from the worker thread that runs the (synchronous) upload service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import anyio.from_thread
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from fairtrain.errors import InvalidInput

__all__ = ["MultipartFile", "multipart_file_chunks", "pull"]


def pull(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """Iterate an async byte stream from a worker thread (``anyio.to_thread``)."""

    async def next_chunk() -> bytes:
        return await stream.__anext__()

    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


@dataclass
class MultipartFile:
    """The form's ``file`` part, filled in as the parser reaches it."""

    filename: str | None = None
    _pending: list[bytes] = field(default_factory=list)
    _in_file: bool = False
    _done: bool = False
    _header_field: bytes = b""
    _header_value: bytes = b""
    _disposition: bytes = b""


def multipart_file_chunks(
    content_type: str, raw: Iterator[bytes], target: MultipartFile
) -> Iterator[bytes]:
    """Yield the bytes of the part named ``file``; other parts are read and dropped."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput(
            "Send the file as multipart/form-data with a 'file' field.", code="invalid_upload"
        )

    def on_part_begin() -> None:
        target._disposition = b""

    def on_header_field(data: bytes, start: int, end: int) -> None:
        target._header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        target._header_value += data[start:end]

    def on_header_end() -> None:
        if target._header_field.lower() == b"content-disposition":
            target._disposition = target._header_value
        target._header_field = b""
        target._header_value = b""

    def on_headers_finished() -> None:
        _, params = parse_options_header(target._disposition)
        if params.get(b"name") == b"file" and not target._done:
            target._in_file = True
            name = params.get(b"filename")
            target.filename = name.decode("utf-8", "replace") if name else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if target._in_file:
            target._pending.append(data[start:end])

    def on_part_end() -> None:
        if target._in_file:
            target._in_file = False
            target._done = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        for chunk in raw:
            parser.write(chunk)
            while target._pending:
                yield target._pending.pop(0)
        parser.finalize()
    except ValueError as exc:  # python-multipart's parse errors derive from ValueError
        raise InvalidInput("The multipart body is malformed.", code="invalid_upload") from exc
    while target._pending:
        yield target._pending.pop(0)
    if not target._done:
        raise InvalidInput(
            "The form has no complete 'file' field.", code="invalid_upload", pointer="/file"
        )
