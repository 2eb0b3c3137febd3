"""Streaming authenticated encryption of blobs: AES-256-GCM in fixed-size chunks.

A blob is a header followed by chunks. Every chunk is sealed on its own, so encryption and
decryption hold one chunk in memory whatever the blob's size, yet the blob as a whole is
authenticated (the construction follows the "STREAM" online AEAD of Hoang, Reyhanitabar,
Rogaway and Vizár, 2015):

* the **nonce** of chunk *i* is an 8-byte random per-blob prefix followed by *i* as a
  4-byte big-endian counter, so no nonce repeats within a blob and, with overwhelming
  probability, none repeats across the up to 2**32 blobs a data key could seal;
* the **associated data** of chunk *i* is the whole header, *i* (8 bytes) and a
  final-chunk flag. The header binds the format version, the blob id, the data-key id,
  the chunk size and the nonce prefix, so a flipped header bit, a chunk moved within a
  blob or swapped in from another blob, a blob stored under another blob's id, a stream
  cut at a chunk boundary (the last remaining chunk is not flagged final) and bytes
  appended after the final chunk are all refused with ``BlobIntegrityError``.

Layout (all integers big-endian)::

    magic "FTVB" | version u8 | chunk_size u32 | nonce_prefix 8B
    | len(blob_id) u8 | blob_id ascii | len(key_id) u8 | key_id ascii
    chunk 0: ciphertext of chunk_size bytes + 16-byte tag
    ...
    chunk n (final): ciphertext of 0..chunk_size bytes + 16-byte tag

Every non-final chunk carries exactly ``chunk_size`` plaintext bytes, so a reader knows
where each chunk ends without per-chunk length fields. Plaintext of a chunk is released
only after its tag verified; a consumer of ``decrypt_stream`` must still treat the output
as unverified until the iterator ends without raising (a cut stream is noticed only at
the end).

Only ``cryptography``'s AES-GCM is used; nothing here is a hand-made primitive.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "KEY_SIZE",
    "MAX_CHUNK_SIZE",
    "TAG_SIZE",
    "BlobHeader",
    "BlobIntegrityError",
    "Readable",
    "chunk_count",
    "ciphertext_size",
    "decrypt_chunks",
    "decrypt_stream",
    "encrypt_stream",
    "header_size",
    "read_header",
]

MAGIC = b"FTVB"
FORMAT_VERSION = 1
KEY_SIZE = 32  # AES-256
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 8
DEFAULT_CHUNK_SIZE = 1 << 20
# A reader allocates one chunk; refusing absurd sizes from a (tampered) header keeps a
# hostile object from making it allocate gigabytes before the first tag check.
MAX_CHUNK_SIZE = 1 << 26
MIN_CHUNK_SIZE = 1
_MAX_CHUNKS = 1 << 32  # the counter is 4 bytes of the 12-byte nonce
_FIXED = struct.Struct(">4sBI8s")


class BlobIntegrityError(Exception):
    """The stored bytes are not what was sealed: tampered, truncated, reordered or foreign."""


@runtime_checkable
class Readable(Protocol):
    """A binary source read in pieces: an open file, boto3's ``StreamingBody``…"""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class BlobHeader:
    blob_id: str
    key_id: str
    chunk_size: int
    nonce_prefix: bytes
    version: int = FORMAT_VERSION

    def encode(self) -> bytes:
        blob_id = self.blob_id.encode("ascii")
        key_id = self.key_id.encode("ascii")
        if not 0 < len(blob_id) < 256 or not 0 < len(key_id) < 256:
            raise ValueError("blob and key ids must be 1..255 ASCII characters")
        return b"".join(
            (
                _FIXED.pack(MAGIC, self.version, self.chunk_size, self.nonce_prefix),
                bytes((len(blob_id),)),
                blob_id,
                bytes((len(key_id),)),
                key_id,
            )
        )


def ciphertext_size(plaintext_size: int, header: BlobHeader) -> int:
    """Bytes a blob of ``plaintext_size`` occupies once sealed (for checks and benchmarks)."""
    chunks = max(1, -(-plaintext_size // header.chunk_size))
    return len(header.encode()) + plaintext_size + chunks * TAG_SIZE


def header_size(blob_id: str, key_id: str) -> int:
    """Bytes of the encoded header of a blob with these (ASCII) ids."""
    return _FIXED.size + 2 + len(blob_id) + len(key_id)


def chunk_count(plaintext_size: int, chunk_size: int) -> int:
    """Chunks a blob of ``plaintext_size`` is sealed in: an empty blob still has its
    (empty) final chunk."""
    return max(1, -(-plaintext_size // chunk_size))


def _nonce(prefix: bytes, index: int) -> bytes:
    if index >= _MAX_CHUNKS:
        raise ValueError("blob too large for one nonce prefix: split it into several blobs")
    return prefix + index.to_bytes(4, "big")


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _pieces(source: Iterable[bytes] | Readable, size: int) -> Iterator[bytes]:
    if isinstance(source, Readable):
        while piece := source.read(size):
            yield piece
    else:
        yield from source


def encrypt_stream(
    key: bytes,
    source: Iterable[bytes] | Readable,
    *,
    blob_id: str,
    key_id: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[bytes]:
    """Seal ``source`` and yield the blob: its header, then one piece per chunk.

    ``source`` may yield pieces of any size; they are re-cut into ``chunk_size`` chunks.
    At most about two chunks are held at once.
    """
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be within {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}")
    aead = AESGCM(key)
    header = BlobHeader(
        blob_id=blob_id,
        key_id=key_id,
        chunk_size=chunk_size,
        nonce_prefix=os.urandom(NONCE_PREFIX_SIZE),
    )
    encoded = header.encode()
    yield encoded
    prefix = header.nonce_prefix
    index = 0
    # ``held`` is a full chunk waiting to learn whether more data follows: the last chunk
    # (full or not) must be the one sealed with the final flag. Pieces that already have
    # the chunk size (the common case: files read in chunk-size pieces) skip the buffer.
    held: bytes | None = None
    buffer = bytearray()
    for piece in _pieces(source, chunk_size):
        if not buffer and len(piece) == chunk_size:
            if held is not None:
                yield aead.encrypt(_nonce(prefix, index), held, _aad(encoded, index, False))
                index += 1
            held = bytes(piece)
            continue
        buffer += piece
        while len(buffer) >= chunk_size:
            if held is not None:
                yield aead.encrypt(_nonce(prefix, index), held, _aad(encoded, index, False))
                index += 1
            held = bytes(buffer[:chunk_size])
            del buffer[:chunk_size]
    if held is not None and buffer:
        yield aead.encrypt(_nonce(prefix, index), held, _aad(encoded, index, False))
        index += 1
        held = None
    last = bytes(buffer) if held is None else held
    yield aead.encrypt(_nonce(prefix, index), last, _aad(encoded, index, True))


def _read_exact(source: Readable, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of the stream."""
    first = source.read(size)
    if len(first) == size or not first:
        return first
    parts = [first]
    got = len(first)
    while got < size:
        more = source.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_header(source: Readable) -> tuple[BlobHeader, bytes]:
    """Parse a blob's header; return it with its exact encoded bytes (the AAD prefix)."""
    fixed = _read_exact(source, _FIXED.size)
    if len(fixed) != _FIXED.size:
        raise BlobIntegrityError("the blob is shorter than its header")
    magic, version, chunk_size, prefix = _FIXED.unpack(fixed)
    if magic != MAGIC:
        raise BlobIntegrityError("not a fairtrain vault blob (bad magic)")
    if version != FORMAT_VERSION:
        raise BlobIntegrityError(f"unknown blob format version {version}")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise BlobIntegrityError(f"implausible chunk size {chunk_size} in the blob header")
    ids: list[bytes] = []
    for _ in range(2):
        length = _read_exact(source, 1)
        value = _read_exact(source, length[0]) if length else b""
        if not length or len(value) != length[0] or not value:
            raise BlobIntegrityError("the blob header is truncated")
        ids.append(value)
    try:
        blob_id, key_id = (value.decode("ascii") for value in ids)
    except UnicodeDecodeError as exc:
        raise BlobIntegrityError("the blob header holds a non-ASCII id") from exc
    header = BlobHeader(blob_id=blob_id, key_id=key_id, chunk_size=chunk_size, nonce_prefix=prefix)
    return header, header.encode()


def decrypt_stream(
    key: bytes,
    source: Readable,
    *,
    expected_blob_id: str | None = None,
    expected_key_id: str | None = None,
) -> Iterator[bytes]:
    """Yield the plaintext of a sealed blob, one verified chunk at a time.

    Raises ``BlobIntegrityError`` at the first chunk that fails, when the header names
    another blob or key than expected, or at the end when the stream was cut or extended.
    """
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    header, encoded = read_header(source)
    if expected_blob_id is not None and header.blob_id != expected_blob_id:
        raise BlobIntegrityError("the stored object belongs to another blob")
    if expected_key_id is not None and header.key_id != expected_key_id:
        raise BlobIntegrityError("the stored object was sealed with another data key")
    aead = AESGCM(key)
    block = header.chunk_size + TAG_SIZE
    current = _read_exact(source, block)
    index = 0
    while True:
        # One block of look-ahead tells whether the current chunk is the last one.
        following = _read_exact(source, block) if len(current) == block else b""
        final = not following
        if len(current) < TAG_SIZE:
            raise BlobIntegrityError(f"chunk {index} is truncated")
        try:
            plaintext = aead.decrypt(
                _nonce(header.nonce_prefix, index), current, _aad(encoded, index, final)
            )
        except InvalidTag as exc:
            raise BlobIntegrityError(
                f"chunk {index} failed authentication (altered, moved, cut or foreign)"
            ) from exc
        yield plaintext
        if final:
            return
        current = following
        index += 1


def decrypt_chunks(
    key: bytes,
    header: BlobHeader,
    source: Readable,
    *,
    first: int,
    stop: int,
    total: int,
) -> Iterator[tuple[int, bytes]]:
    """``(index, plaintext)`` of chunks ``first`` .. ``stop - 1`` of a blob of ``total``
    chunks, read from ``source`` positioned at the start of chunk ``first``.

    What a ranged read needs: each chunk is authenticated on its own, bound to its
    position and to whether it is the last one (known from ``total``, which the caller
    takes from the size recorded at store time), so a chunk read out of the middle is
    as trustworthy as one read in sequence. A short or altered chunk raises
    ``BlobIntegrityError``.
    """
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    if not 0 <= first <= stop <= total:
        raise ValueError("chunk range outside the blob")
    aead = AESGCM(key)
    encoded = header.encode()
    block = header.chunk_size + TAG_SIZE
    for index in range(first, stop):
        final = index == total - 1
        sealed = _read_exact(source, block)
        if len(sealed) < TAG_SIZE or (not final and len(sealed) != block):
            raise BlobIntegrityError(f"chunk {index} is truncated")
        try:
            plaintext = aead.decrypt(
                _nonce(header.nonce_prefix, index), sealed, _aad(encoded, index, final)
            )
        except InvalidTag as exc:
            raise BlobIntegrityError(
                f"chunk {index} failed authentication (altered, moved, cut or foreign)"
            ) from exc
        yield index, plaintext
