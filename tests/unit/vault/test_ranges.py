"""Ranged reads of a blob (resumed downloads): any slice comes back exactly, only its
chunks are read, and each chunk is still authenticated, on both storage backends."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from fairtrain.errors import Conflict, Gone, InvalidInput
from fairtrain.vault.backends import BlobBackend, LocalDirectoryBackend
from fairtrain.vault.crypto import TAG_SIZE, header_size
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.models import VaultBlob
from fairtrain.vault.service import delete_blob, open_blob_range, shred_owner, store_blob

OWNER = "licence:lic_ranges"
CHUNK = 4096


def _store(session: Session, backend: BlobBackend, keyring: KeyRing, data: bytes) -> VaultBlob:
    return store_blob(
        session,
        backend,
        owner=OWNER,
        stream=iter([data]),
        media_type="application/octet-stream",
        max_bytes=len(data) + 1,
        keyring=keyring,
        chunk_size=CHUNK,
    )


def _read(
    session: Session, backend: BlobBackend, keyring: KeyRing, blob: VaultBlob, start: int, stop: int
) -> bytes:
    return b"".join(
        open_blob_range(session, backend, blob.id, start=start, stop=stop, keyring=keyring)
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_range_reads_back_exactly(
    session: Session, local_backend: LocalDirectoryBackend, keyring: KeyRing, data: st.DataObject
) -> None:
    size = data.draw(st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 10_007]))
    content = os.urandom(size)
    blob = _store(session, local_backend, keyring, content)
    start = data.draw(st.integers(0, size))
    stop = data.draw(st.integers(start, size))
    assert _read(session, local_backend, keyring, blob, start, stop) == content[start:stop]


def test_ranges_on_both_backends(session: Session, backend: BlobBackend, keyring: KeyRing) -> None:
    content = os.urandom(5 * CHUNK + 123)
    blob = _store(session, backend, keyring, content)
    for start, stop in [(0, 1), (CHUNK - 1, CHUNK + 1), (2 * CHUNK, 5 * CHUNK + 123), (17, 17)]:
        assert _read(session, backend, keyring, blob, start, stop) == content[start:stop]
    whole = _read(session, backend, keyring, blob, 0, len(content))
    assert whole == content


def test_a_tampered_chunk_in_the_range_is_refused(
    session: Session, local_backend: LocalDirectoryBackend, keyring: KeyRing
) -> None:
    content = os.urandom(4 * CHUNK)
    blob = _store(session, local_backend, keyring, content)
    path = local_backend.root / blob.storage_key
    raw = bytearray(path.read_bytes())
    # Flip one bit of chunk 2's ciphertext.
    raw[header_size(blob.id, blob.key_id) + 2 * (CHUNK + TAG_SIZE) + 10] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(Conflict) as refused:
        _read(session, local_backend, keyring, blob, 2 * CHUNK + 5, 3 * CHUNK + 5)
    assert refused.value.code == "vault_integrity_error"
    # A range that does not touch chunk 2 never reads it: it is still served.
    assert _read(session, local_backend, keyring, blob, 0, CHUNK) == content[:CHUNK]


def test_a_truncated_object_is_refused_at_its_last_chunk(
    session: Session, local_backend: LocalDirectoryBackend, keyring: KeyRing
) -> None:
    content = os.urandom(3 * CHUNK + 50)
    blob = _store(session, local_backend, keyring, content)
    path = local_backend.root / blob.storage_key
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(Conflict) as refused:
        _read(session, local_backend, keyring, blob, 3 * CHUNK, 3 * CHUNK + 50)
    assert refused.value.code == "vault_integrity_error"


def test_refusals_before_the_first_byte(
    session: Session, local_backend: LocalDirectoryBackend, keyring: KeyRing
) -> None:
    blob = _store(session, local_backend, keyring, os.urandom(100))
    with pytest.raises(InvalidInput) as outside:
        open_blob_range(session, local_backend, blob.id, start=50, stop=101, keyring=keyring)
    assert outside.value.code == "vault_invalid_range"
    shred_owner(session, OWNER)
    with pytest.raises(Gone) as shredded:
        open_blob_range(session, local_backend, blob.id, start=0, stop=10, keyring=keyring)
    assert shredded.value.code == "vault_key_destroyed"
    other = _store(session, local_backend, keyring, os.urandom(100))
    delete_blob(session, local_backend, other.id)
    with pytest.raises(Gone) as deleted:
        open_blob_range(session, local_backend, other.id, start=0, stop=10, keyring=keyring)
    assert deleted.value.code == "vault_blob_deleted"
