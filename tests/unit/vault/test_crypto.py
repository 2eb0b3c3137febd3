"""Chunked AES-256-GCM: round trips, and every kind of tampering refused."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtrain.vault.crypto import (
    KEY_SIZE,
    MAX_CHUNK_SIZE,
    TAG_SIZE,
    BlobIntegrityError,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
    read_header,
)

KEY = bytes(range(KEY_SIZE))
OTHER_KEY = bytes(reversed(range(KEY_SIZE)))


def seal(data: bytes, chunk_size: int, *, blob_id: str = "blb_a", key: bytes = KEY) -> bytes:
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    return b"".join(
        encrypt_stream(key, iter(pieces), blob_id=blob_id, key_id="vky_k", chunk_size=chunk_size)
    )


def open_sealed(sealed: bytes, *, key: bytes = KEY, **expected: str) -> bytes:
    return b"".join(decrypt_stream(key, io.BytesIO(sealed), **expected))


def chunk_bounds(sealed: bytes, chunk_size: int) -> list[tuple[int, int]]:
    """(start, end) of every sealed chunk."""
    source = io.BytesIO(sealed)
    _header, encoded = read_header(source)
    bounds = []
    start = len(encoded)
    while start < len(sealed):
        end = min(start + chunk_size + TAG_SIZE, len(sealed))
        bounds.append((start, end))
        start = end
    return bounds


@given(data=st.binary(max_size=2048), chunk_size=st.integers(min_value=1, max_value=300))
def test_round_trip_any_bytes_any_chunk_size(data: bytes, chunk_size: int) -> None:
    sealed = seal(data, chunk_size)
    assert open_sealed(sealed, expected_blob_id="blb_a", expected_key_id="vky_k") == data
    header, _ = read_header(io.BytesIO(sealed))
    assert len(sealed) == ciphertext_size(len(data), header)


@given(data=st.binary(min_size=1, max_size=64), chunk_size=st.integers(1, 16))
def test_round_trip_from_a_file_like_source(data: bytes, chunk_size: int) -> None:
    sealed = b"".join(
        encrypt_stream(KEY, io.BytesIO(data), blob_id="blb_a", key_id="k", chunk_size=chunk_size)
    )
    assert open_sealed(sealed) == data


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 48])
def test_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data, 16)
    assert open_sealed(sealed) == data
    # One tag per chunk, and never an extra empty chunk after a full one.
    expected_chunks = max(1, -(-size // 16))
    assert len(chunk_bounds(sealed, 16)) == expected_chunks


def test_identical_plaintexts_seal_differently() -> None:
    data = b"same bytes" * 10
    assert seal(data, 16) != seal(data, 16)


def test_plaintext_does_not_appear_in_the_ciphertext() -> None:
    data = b"MARKER-0123456789 " * 200
    assert b"MARKER" not in seal(data, 64)


@settings(max_examples=60)
@given(
    data=st.binary(max_size=200),
    chunk_size=st.integers(1, 40),
    cut=st.integers(min_value=0),
)
def test_any_truncation_is_detected(data: bytes, chunk_size: int, cut: int) -> None:
    sealed = seal(data, chunk_size)
    truncated = sealed[: cut % len(sealed)]
    with pytest.raises(BlobIntegrityError):
        open_sealed(truncated)


@settings(max_examples=60)
@given(data=st.binary(max_size=200), chunk_size=st.integers(1, 40), bit=st.integers(min_value=0))
def test_any_bit_flip_is_detected(data: bytes, chunk_size: int, bit: int) -> None:
    sealed = bytearray(seal(data, chunk_size))
    position = bit % (len(sealed) * 8)
    sealed[position // 8] ^= 1 << (position % 8)
    with pytest.raises(BlobIntegrityError):
        open_sealed(bytes(sealed))


@settings(max_examples=60)
@given(
    data=st.binary(min_size=2, max_size=120),
    chunk_size=st.integers(1, 8),
    draw=st.data(),
)
def test_any_reordering_of_chunks_is_detected(
    data: bytes, chunk_size: int, draw: st.DataObject
) -> None:
    sealed = seal(data, chunk_size)
    bounds = chunk_bounds(sealed, chunk_size)
    if len(bounds) < 2:
        chunk_size = 1
        sealed = seal(data, chunk_size)
        bounds = chunk_bounds(sealed, chunk_size)
    chunks = [sealed[start:end] for start, end in bounds]
    order = draw.draw(st.permutations(range(len(chunks))).filter(lambda p: list(p) != sorted(p)))
    shuffled = [chunks[index] for index in order]
    header_end = bounds[0][0]
    with pytest.raises(BlobIntegrityError):
        open_sealed(sealed[:header_end] + b"".join(shuffled))


@given(data=st.binary(min_size=1, max_size=100), chunk_size=st.integers(1, 20))
def test_dropping_or_duplicating_a_chunk_is_detected(data: bytes, chunk_size: int) -> None:
    sealed = seal(data, chunk_size)
    bounds = chunk_bounds(sealed, chunk_size)
    header_end = bounds[0][0]
    chunks = [sealed[start:end] for start, end in bounds]
    for index in range(len(chunks)):
        dropped = chunks[:index] + chunks[index + 1 :]
        duplicated = chunks[: index + 1] + chunks[index:]
        for variant in (dropped, duplicated):
            with pytest.raises(BlobIntegrityError):
                open_sealed(sealed[:header_end] + b"".join(variant))


def test_a_chunk_swapped_in_from_another_blob_is_detected() -> None:
    data = os.urandom(64)
    first = seal(data, 16, blob_id="blb_a")
    second = seal(data, 16, blob_id="blb_b")
    bounds = chunk_bounds(first, 16)
    start, end = bounds[1]
    spliced = first[:start] + second[start:end] + first[end:]
    with pytest.raises(BlobIntegrityError, match="chunk 1"):
        open_sealed(spliced)


def test_appended_bytes_are_detected() -> None:
    sealed = seal(b"hello world", 4)
    with pytest.raises(BlobIntegrityError):
        open_sealed(sealed + b"\x00")
    with pytest.raises(BlobIntegrityError):
        open_sealed(sealed + seal(b"more", 4)[-20:])


def test_wrong_key_is_detected() -> None:
    with pytest.raises(BlobIntegrityError, match="chunk 0"):
        open_sealed(seal(b"secret", 16), key=OTHER_KEY)


def test_a_blob_stored_under_another_id_is_refused() -> None:
    sealed = seal(b"content", 16, blob_id="blb_a")
    with pytest.raises(BlobIntegrityError, match="another blob"):
        open_sealed(sealed, expected_blob_id="blb_b")
    with pytest.raises(BlobIntegrityError, match="another data key"):
        open_sealed(sealed, expected_key_id="vky_other")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"XXXX" + b[4:], "bad magic"),
        (lambda b: b[:4] + b"\x09" + b[5:], "version"),
        (lambda b: b[:5] + (MAX_CHUNK_SIZE + 1).to_bytes(4, "big") + b[9:], "chunk size"),
        (lambda b: b[:5] + bytes(4) + b[9:], "chunk size"),
        (lambda b: b[:10], "shorter than its header"),
        (lambda b: b[:18], "truncated"),
        (lambda b: b[:17] + b"\x00" + b[18:], "truncated"),
        (lambda b: b[:18] + b"\xff" + b[19:], "non-ASCII"),
    ],
)
def test_malformed_headers_are_refused(mutate: object, message: str) -> None:
    sealed = seal(b"payload", 16)
    with pytest.raises(BlobIntegrityError, match=message):
        open_sealed(mutate(sealed))  # type: ignore[operator]  # the lambdas above


def test_bad_parameters_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        list(encrypt_stream(b"short", [b"x"], blob_id="b", key_id="k"))
    with pytest.raises(ValueError, match="chunk_size"):
        list(encrypt_stream(KEY, [b"x"], blob_id="b", key_id="k", chunk_size=0))
    with pytest.raises(ValueError, match="ids"):
        list(encrypt_stream(KEY, [b"x"], blob_id="", key_id="k"))
    with pytest.raises(ValueError, match="32-byte"):
        list(decrypt_stream(b"short", io.BytesIO(b"")))


class _Trickle(io.RawIOBase):
    """A source that returns at most 3 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(min(size, 3) if size >= 0 else 3)


def test_decrypting_from_a_source_that_returns_short_reads() -> None:
    data = os.urandom(100)
    sealed = seal(data, 16)
    assert b"".join(decrypt_stream(KEY, _Trickle(sealed))) == data


def test_memory_is_bounded_by_the_chunk_size() -> None:
    # Piece sizes seen by a consumer never exceed a chunk plus its tag, however the
    # source is cut: the encryptor does not accumulate the stream.
    source = (os.urandom(1000) for _ in range(50))
    sizes = [
        len(piece) for piece in encrypt_stream(KEY, source, blob_id="b", key_id="k", chunk_size=256)
    ]
    assert max(sizes[1:]) == 256 + TAG_SIZE
    assert len(sizes) == 1 + -(-50_000 // 256)
