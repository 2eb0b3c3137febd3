"""Reading an item's bytes exactly once while checking they are the bytes described.

Every writer gets an item's bytes through ``VerifyingReader``: it counts and hashes what
passes through and, at the end, refuses an item whose size or SHA-256 differs from what
the item declared. An export built from bytes that changed on the way (a vault read that
was cut short, a watermark applied twice) therefore fails instead of shipping them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from fairtrain.delivery.items import ExportItem
from fairtrain.errors import InvalidInput

__all__ = [
    "CHUNK",
    "Digest",
    "Sealed",
    "Sealer",
    "ShardSink",
    "SinkOpener",
    "VerifyingReader",
    "fsync_directory",
    "fsync_file",
    "read_all",
    "seal",
    "sealed",
    "settle",
    "sha256_file",
]

CHUNK = 1 << 20


class VerifyingReader:
    """A read-only file object over an item's stream that hashes, counts and copies what
    it reads to ``sinks`` (a plain file copy next to a tar member, for instance)."""

    def __init__(self, item: ExportItem, sinks: Iterable[IO[bytes] | ShardSink] = ()) -> None:
        self._item = item
        self._source: BinaryIO = item.open()
        self._sinks = list(sinks)
        # A source that checks the bytes against the item's digest itself (the vault)
        # is not hashed a second time: only counted.
        self._digest = None if item.source_checked else hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._item.size - self.count + 1
        # Never ask for more than one byte past the declared size: a source that is
        # longer than declared is caught without reading the rest of it.
        size = min(size, max(self._item.size - self.count, 0) + 1)
        # Sources (a decrypting vault stream) may return less than asked before their
        # end; tarfile takes a short read for the end of data, so fill the request.
        pieces = []
        wanted = size
        while wanted > 0:
            piece = self._source.read(wanted)
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        data = b"".join(pieces)
        if data:
            self.count += len(data)
            if self._digest is not None:
                self._digest.update(data)
            for sink in self._sinks:
                sink.write(data)
        return data

    def finish(self) -> None:
        """Read to the end (one byte past the declared size at most) and refuse the item
        unless size and digest match."""
        while self.count <= self._item.size and self.read(CHUNK):
            pass
        self._source.close()
        if self.count != self._item.size or (
            self._digest is not None and self._digest.hexdigest() != self._item.sha256
        ):
            raise InvalidInput(
                f"Item {self._item.key} streamed {self.count} bytes that do not match its "
                f"declared size ({self._item.size}) and SHA-256; nothing was exported.",
                code="export_item_mismatch",
            )

    def close(self) -> None:
        self._source.close()


def read_all(item: ExportItem) -> bytes:
    """The whole item, checked (for items small enough to embed in a Parquet cell)."""
    reader = VerifyingReader(item)
    try:
        # One read of the declared size: a file returns it as one bytes object, so the
        # item is in memory once, not once in pieces and once joined.
        data = reader.read(item.size)
        reader.finish()
    finally:
        reader.close()
    return data


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while piece := handle.read(CHUNK):
            digest.update(piece)
            size += len(piece)
    return digest.hexdigest(), size


def seal(path: Path) -> tuple[str, int]:
    """Digest a file just written (it is still in the page cache, so this costs the hash,
    not a read from disk), then ask the kernel to start writing it out and drop it from
    the cache: an export of many GB neither re-reads its shards nor crowds the cache.
    ``fsync_file`` later waits for the write-out."""
    digest, size = sha256_file(path)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)
    return digest, size


# Takes a finished shard or file copy and returns its SHA-256 and size, or a claim to
# them (called once the caller needs them; it raises what went wrong in between). The
# delivery service passes one that stores the file in the vault from another thread while
# the export goes on, and takes its bytes off the scratch disk (the vault's own digest of
# what it stored is the one the manifest records): nothing is hashed twice, the scratch
# disk never holds the export, and the vault's writes and fsyncs overlap the next shard.
Digest = tuple[str, int]
Sealed = Digest | Callable[[], Digest]
Sealer = Callable[[Path], Sealed]


class ShardSink(Protocol):
    """Where a shard or file copy is written when it does not go to the scratch disk at
    all (the delivery service streams it into the vault): ``write`` and ``tell`` as a
    file's, then ``seal`` once the last byte is written, or ``abort`` (nothing is kept)."""

    # What pyarrow's and tarfile's writers ask of a file besides write and tell.
    @property
    def closed(self) -> bool: ...

    def write(self, data: bytes, /) -> int: ...

    def tell(self) -> int: ...

    def close(self) -> None: ...

    def seal(self) -> Sealed: ...

    def abort(self) -> None: ...


# Opens the sink of one file of the export, named by its path in the export.
SinkOpener = Callable[[str], ShardSink]


def sealed(path: Path, sealer: Sealer | None, *, durable: bool) -> Sealed:
    """A finished file's digest and size (or a claim to them), through ``sealer`` when
    there is one."""
    if sealer is not None:
        return sealer(path)
    return seal(path) if durable else sha256_file(path)


def settle(claim: Sealed) -> Digest:
    """The digest and size a ``Sealed`` stands for, waiting for it if need be."""
    return claim if isinstance(claim, tuple) else claim()


def fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
