"""HTTP range requests (RFC 9110 §14): which bytes of a file a download asks for.

One range per request, which is what resuming clients send (``bytes=N-``). A header this
module does not serve as a range (another unit, several ranges, bad syntax) is ignored,
as the RFC allows, and the whole file is sent. ``If-Range`` with anything but the file's
current ETag also sends the whole file, so a client never glues the tail of a new file
onto the head of an old one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ByteRange", "Unsatisfiable", "requested_range"]

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    stop: int  # exclusive

    @property
    def length(self) -> int:
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """No byte of the file is in the range asked for (HTTP 416)."""

    size: int

    def content_range(self) -> str:
        return f"bytes */{self.size}"


def requested_range(
    range_header: str | None, if_range: str | None, *, size: int, etag: str
) -> ByteRange | Unsatisfiable | None:
    """The range to send, ``Unsatisfiable``, or None for the whole file."""
    if not range_header:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None
    match = _SINGLE.match(range_header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        wanted = int(last)
        if wanted == 0 or size == 0:
            return Unsatisfiable(size)
        return ByteRange(max(size - wanted, 0), size)
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        return Unsatisfiable(size)
    stop = min(int(last) + 1, size) if last else size
    return ByteRange(start, stop)
