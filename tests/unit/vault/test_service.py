"""Vault service: store, read, delete, shred, rotate; kept in step with transactions."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.config import Mode, Settings
from fairtrain.errors import Conflict, Gone, InvalidInput, NotFound, PayloadTooLarge
from fairtrain.vault import service
from fairtrain.vault.backends import BlobBackend, LocalDirectoryBackend
from fairtrain.vault.crypto import TAG_SIZE
from fairtrain.vault.keys import KeyRing, load_kek_file, retired_kek_paths
from fairtrain.vault.models import BlobState, ContributorKey, VaultBlob
from fairtrain.vault.service import (
    Vault,
    default_keyring,
    delete_blob,
    find_orphans,
    open_blob,
    prune_retired_keks,
    reset_default_keyring,
    rotate_kek,
    shred_owner,
    store_blob,
    sweep_orphans,
    verify_blobs,
)

ALICE = "user:usr_alice"
BOB = "user:usr_bob"
MARKER = b"FAIRTRAIN-PLAINTEXT-MARKER-7f3a"
MiB = 1 << 20


def store(
    session: Session,
    backend: BlobBackend,
    keyring: KeyRing,
    data: bytes,
    *,
    owner: str = ALICE,
    max_bytes: int = 64 * MiB,
    chunk_size: int = 64 * 1024,
) -> VaultBlob:
    return store_blob(
        session,
        backend,
        owner=owner,
        stream=iter([data[i : i + 10_000] for i in range(0, len(data), 10_000)]),
        media_type="audio/wav",
        max_bytes=max_bytes,
        keyring=keyring,
        chunk_size=chunk_size,
    )


def read(session: Session, backend: BlobBackend, keyring: KeyRing, blob_id: str) -> bytes:
    return b"".join(open_blob(session, backend, blob_id, keyring=keyring))


def raw_objects(backend: BlobBackend) -> dict[str, bytes]:
    objects = {}
    for stored in backend.iter_objects():
        with backend.open(stored.key) as source:
            objects[stored.key] = source.read()
    if isinstance(backend, LocalDirectoryBackend):
        # Also every file on disk, temporary ones included.
        for path in backend.root.rglob("*"):
            if path.is_file():
                objects[str(path)] = path.read_bytes()
    return objects


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_store_and_read_back(session: Session, backend: BlobBackend, keyring: KeyRing) -> None:
    data = os.urandom(300_000)
    blob = store(session, backend, keyring, data)
    session.commit()
    assert blob.id.startswith("blb_")
    assert blob.plaintext_size == len(data)
    assert blob.state == BlobState.STORED
    assert blob.ciphertext_size > len(data)
    assert backend.exists(blob.storage_key)
    assert read(session, backend, keyring, blob.id) == data
    assert actions(session) == ["vault.key_created", "vault.blob_stored"]
    assert verify_stored_chain(session)[0]


def test_store_from_a_file_and_the_default_keyring(
    session: Session,
    local_backend: LocalDirectoryBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path / "data"))
    from fairtrain.config import reset_settings_cache

    reset_settings_cache()
    reset_default_keyring()
    try:
        data = os.urandom(5000)
        blob = store_blob(
            session,
            local_backend,
            owner=ALICE,
            stream=io.BytesIO(data),
            media_type="image/png",
            max_bytes=10_000,
        )
        assert b"".join(open_blob(session, local_backend, blob.id)) == data
        assert default_keyring() is default_keyring()
        assert (tmp_path / "data" / "keys" / "kek.b64").is_file()
    finally:
        reset_default_keyring()
        reset_settings_cache()


def test_an_empty_blob(session: Session, backend: BlobBackend, keyring: KeyRing) -> None:
    blob = store(session, backend, keyring, b"")
    assert blob.plaintext_size == 0
    assert read(session, backend, keyring, blob.id) == b""


def test_one_data_key_per_owner(session: Session, backend: BlobBackend, keyring: KeyRing) -> None:
    first = store(session, backend, keyring, b"a")
    second = store(session, backend, keyring, b"b")
    other = store(session, backend, keyring, b"c", owner=BOB)
    assert first.key_id == second.key_id != other.key_id
    assert session.scalar(select(func.count()).select_from(ContributorKey)) == 2


def test_concurrent_first_uploads_share_one_key(
    sessions: sessionmaker[Session],
    local_backend: LocalDirectoryBackend,
    keyring: KeyRing,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another process created the owner's key after this one looked: the unique index
    # refuses the second key and the savepoint lets the upload use the winner's.
    with sessions() as first:
        winner = store(first, local_backend, keyring, b"first")
        first.commit()
    real = service._live_key
    answers = iter([None])
    monkeypatch.setattr(
        service, "_live_key", lambda session, owner: next(answers, real(session, owner))
    )
    with sessions() as second:
        blob = store(second, local_backend, keyring, b"second")
        second.commit()
        assert blob.key_id == winner.key_id
        assert read(second, local_backend, keyring, blob.id) == b"second"
        assert second.scalar(select(func.count()).select_from(ContributorKey)) == 1


def test_savepoints_do_not_make_storage_changes_durable(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    kept = store(session, backend, keyring, b"kept")
    session.commit()
    with session.begin_nested():
        delete_blob(session, backend, kept.id)
        fresh = store(session, backend, keyring, b"fresh")
    # Releasing the savepoint is not a commit: nothing deleted yet, and the outer
    # rollback takes the new object away and keeps the old one.
    assert backend.exists(kept.storage_key) and backend.exists(fresh.storage_key)
    session.rollback()
    assert [o.key for o in backend.iter_objects()] == [kept.storage_key]
    assert read(session, backend, keyring, kept.id) == b"kept"


def test_invalid_owner_is_refused(session: Session, backend: BlobBackend, keyring: KeyRing) -> None:
    with pytest.raises(InvalidInput) as error:
        store(session, backend, keyring, b"x", owner="alice")
    assert error.value.code == "vault_invalid_owner"
    with pytest.raises(InvalidInput):
        shred_owner(session, "no owner")


def test_oversize_leaves_no_object_and_no_row(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    with pytest.raises(PayloadTooLarge) as error:
        store(session, backend, keyring, os.urandom(200_000), max_bytes=150_000)
    assert error.value.code == "vault_too_large"
    assert list(backend.iter_objects()) == []
    assert session.scalar(select(func.count()).select_from(VaultBlob)) == 0
    if isinstance(backend, LocalDirectoryBackend):
        assert list(backend.iter_partial_files()) == []


def test_a_failing_source_leaves_no_object(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise OSError("client went away")

    with pytest.raises(OSError, match="went away"):
        store_blob(
            session,
            backend,
            owner=ALICE,
            stream=broken(),
            media_type="video/mp4",
            max_bytes=MiB,
            keyring=keyring,
        )
    assert list(backend.iter_objects()) == []


def test_rollback_removes_the_objects_stored_in_the_transaction(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    kept = store(session, backend, keyring, b"kept")
    session.commit()
    store(session, backend, keyring, b"rolled back")
    store(session, backend, keyring, b"also rolled back", owner=BOB)
    assert len(list(backend.iter_objects())) == 3
    session.rollback()
    assert [o.key for o in backend.iter_objects()] == [kept.storage_key]
    assert read(session, backend, keyring, kept.id) == b"kept"


def test_delete_removes_the_object_only_after_commit(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    blob = store(session, backend, keyring, b"to delete")
    session.commit()
    delete_blob(session, backend, blob.id)
    assert backend.exists(blob.storage_key)
    session.rollback()  # a rolled-back deletion loses nothing
    assert backend.exists(blob.storage_key)
    assert read(session, backend, keyring, blob.id) == b"to delete"

    delete_blob(session, backend, blob.id, actor=ALICE)
    delete_blob(session, backend, blob.id)  # idempotent, no second event
    session.commit()
    assert not backend.exists(blob.storage_key)
    with pytest.raises(Gone) as error:
        open_blob(session, backend, blob.id, keyring=keyring)
    assert error.value.code == "vault_blob_deleted"
    assert actions(session).count("vault.blob_deleted") == 1


def test_store_then_delete_in_one_transaction(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    blob = store(session, backend, keyring, b"short-lived")
    delete_blob(session, backend, blob.id)
    session.commit()
    assert list(backend.iter_objects()) == []


def test_unknown_blob(session: Session, backend: BlobBackend, keyring: KeyRing) -> None:
    with pytest.raises(NotFound) as error:
        open_blob(session, backend, "blb_nope", keyring=keyring)
    assert error.value.code == "vault_blob_not_found"
    with pytest.raises(NotFound):
        delete_blob(session, backend, "blb_nope")


def _replace_object(backend: BlobBackend, key: str, content: bytes) -> None:
    backend.delete(key)
    backend.put(key, [content])


def _stored_bytes(backend: BlobBackend, key: str) -> bytes:
    with backend.open(key) as source:
        return source.read()


@pytest.mark.parametrize("where", ["header", "middle", "tag", "truncate", "append"])
def test_tampered_objects_fail_with_vault_integrity_error(
    session: Session, backend: BlobBackend, keyring: KeyRing, where: str
) -> None:
    blob = store(session, backend, keyring, os.urandom(200_000))
    sealed = bytearray(_stored_bytes(backend, blob.storage_key))
    if where == "header":
        sealed[20] ^= 0x01
    elif where == "middle":
        sealed[len(sealed) // 2] ^= 0x80
    elif where == "tag":
        sealed[-1] ^= 0x01
    elif where == "truncate":
        del sealed[-(64 * 1024 + TAG_SIZE) :]
    else:
        sealed += b"\x00" * 10
    _replace_object(backend, blob.storage_key, bytes(sealed))
    with pytest.raises(Conflict) as error:
        read(session, backend, keyring, blob.id)
    assert error.value.code == "vault_integrity_error"
    assert error.value.extra == {"blob_id": blob.id}


def test_objects_swapped_between_blobs_are_detected(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    first = store(session, backend, keyring, b"first blob")
    second = store(session, backend, keyring, b"second blob")
    _replace_object(backend, first.storage_key, _stored_bytes(backend, second.storage_key))
    with pytest.raises(Conflict, match="another blob"):
        read(session, backend, keyring, first.id)


def test_a_missing_object_or_wrong_hash_is_an_integrity_error(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    blob = store(session, backend, keyring, b"content")
    backend.delete(blob.storage_key)
    with pytest.raises(Conflict, match="missing"):
        read(session, backend, keyring, blob.id)
    other = store(session, backend, keyring, b"content")
    other.sha256 = "0" * 64
    with pytest.raises(Conflict, match="recorded hash"):
        read(session, backend, keyring, other.id)


def test_a_tampered_wrapped_key_is_an_integrity_error(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    blob = store(session, backend, keyring, b"content")
    key = session.get(ContributorKey, blob.key_id)
    assert key is not None and key.wrapped_key is not None
    key.wrapped_key = bytes([key.wrapped_key[0] ^ 1]) + key.wrapped_key[1:]
    reset_default_keyring()  # drop the cached unwrapped key
    with pytest.raises(Conflict) as error:
        read(session, backend, keyring, blob.id)
    assert error.value.code == "vault_integrity_error"


def test_crypto_shredding(session: Session, backend: BlobBackend, keyring: KeyRing) -> None:
    """No plaintext in storage before or after; after the shred nothing decrypts."""
    alice_blobs = [
        store(session, backend, keyring, MARKER * n + os.urandom(n), chunk_size=4096)
        for n in (1, 100, 5000)
    ]
    bob_blob = store(session, backend, keyring, MARKER + b" bob", owner=BOB)
    session.commit()
    assert read(session, backend, keyring, alice_blobs[2].id).startswith(MARKER)

    before = raw_objects(backend)
    assert len(before) >= 4
    assert not any(MARKER in content for content in before.values())

    report = shred_owner(session, ALICE, actor="user:usr_operator")
    session.commit()
    assert report.owner == ALICE
    assert report.blobs_shredded == 3
    assert report.key_ids == (alice_blobs[0].key_id,)

    key = session.get(ContributorKey, alice_blobs[0].key_id)
    assert key is not None
    assert key.wrapped_key is None and key.kek_id is None and key.destroyed_at is not None
    for blob in alice_blobs:
        session.refresh(blob)
        assert blob.state == BlobState.SHREDDED
        with pytest.raises(Gone) as error:
            open_blob(session, backend, blob.id, keyring=keyring)
        assert error.value.code == "vault_key_destroyed"
    after = raw_objects(backend)
    assert not any(MARKER in content for content in after.values())
    # Other contributors are untouched.
    assert read(session, backend, keyring, bob_blob.id) == MARKER + b" bob"
    assert "vault.owner_shredded" in actions(session)
    assert verify_stored_chain(session)[0]

    # A returning contributor gets a fresh key; the old blobs stay unreadable.
    fresh = store(session, backend, keyring, b"new start")
    assert fresh.key_id != alice_blobs[0].key_id
    assert read(session, backend, keyring, fresh.id) == b"new start"
    with pytest.raises(Gone):
        open_blob(session, backend, alice_blobs[0].id, keyring=keyring)


def test_shredding_an_owner_without_keys(session: Session) -> None:
    report = shred_owner(session, "user:usr_nobody")
    assert report.key_ids == () and report.blobs_shredded == 0


def _dev_settings(tmp_path: Path, kek_path: Path) -> Settings:
    return Settings(mode=Mode.DEV, data_dir=tmp_path, kek_path=kek_path)


def test_rotate_kek_rewraps_keys_without_touching_blobs(
    session: Session, backend: BlobBackend, keyring: KeyRing, kek_path: Path, tmp_path: Path
) -> None:
    blobs = [store(session, backend, keyring, os.urandom(1000), owner=o) for o in (ALICE, BOB)]
    shred_owner(session, "user:usr_carol")
    session.commit()
    old_kek = keyring.current.id
    sealed_before = raw_objects(backend)
    plain_before = [read(session, backend, keyring, b.id) for b in blobs]

    settings = _dev_settings(tmp_path, kek_path)
    assert rotate_kek(session, settings) == 2
    # Until commit, the old KEK is kept as a retired file beside the new one.
    assert [p.name for p in retired_kek_paths(kek_path)] == [f"kek.b64.{old_kek}.retired"]
    session.commit()
    new_kek = load_kek_file(kek_path).id
    assert new_kek != old_kek
    assert set(session.scalars(select(ContributorKey.kek_id))) == {new_kek}
    assert prune_retired_keks(session, settings) == [old_kek]
    assert retired_kek_paths(kek_path) == []

    assert raw_objects(backend) == sealed_before
    fresh_ring = KeyRing.from_file(kek_path)
    assert [read(session, backend, fresh_ring, b.id) for b in blobs] == plain_before
    assert "vault.kek_rotated" in actions(session)


def test_a_rotation_that_rolls_back_keeps_every_key_readable(
    session: Session, backend: BlobBackend, keyring: KeyRing, kek_path: Path, tmp_path: Path
) -> None:
    blob = store(session, backend, keyring, b"survives")
    session.commit()
    old_kek = keyring.current.id
    settings = _dev_settings(tmp_path, kek_path)
    rotate_kek(session, settings)
    session.rollback()
    # The rows still name the old KEK, which the retired file keeps available.
    assert prune_retired_keks(session, settings) == []
    ring = KeyRing.from_file(kek_path)
    assert ring.current.id != old_kek
    assert read(session, backend, ring, blob.id) == b"survives"
    # Running the rotation again finishes the job and frees the old KEK.
    assert rotate_kek(session, settings) == 1
    session.commit()
    assert sorted(prune_retired_keks(session, settings)) != []
    assert retired_kek_paths(kek_path) == []
    assert read(session, backend, KeyRing.from_file(kek_path), blob.id) == b"survives"


def test_verify_blobs_reports_each_blob(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    good = store(session, backend, keyring, b"good")
    bad = store(session, backend, keyring, b"bad")
    store(session, backend, keyring, b"gone", owner=BOB)
    shred_owner(session, BOB)
    _replace_object(backend, bad.storage_key, b"garbage")
    checks = {check.blob_id: check for check in verify_blobs(session, backend, keyring=keyring)}
    assert set(checks) == {good.id, bad.id}
    assert checks[good.id].ok
    assert not checks[bad.id].ok and checks[bad.id].code == "vault_integrity_error"


def test_orphans_are_found_and_swept(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    blob = store(session, backend, keyring, b"owned")
    session.commit()
    backend.put("blobs/zz/blb_orphan", [b"left by a crash"])
    assert find_orphans(session, backend) == []  # younger than the grace period
    orphans = find_orphans(session, backend, grace=timedelta(seconds=-60))
    assert [o.key for o in orphans] == ["blobs/zz/blb_orphan"]
    assert sweep_orphans(session, backend, grace=timedelta(seconds=-60)) == ["blobs/zz/blb_orphan"]
    session.commit()
    assert [o.key for o in backend.iter_objects()] == [blob.storage_key]
    assert sweep_orphans(session, backend, grace=timedelta(seconds=-60)) == []
    assert actions(session).count("vault.orphans_swept") == 1


def test_a_rolled_back_savepoint_undoes_its_storage_changes(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    kept = store(session, backend, keyring, b"kept")
    session.commit()
    savepoint = session.begin_nested()
    delete_blob(session, backend, kept.id)
    store(session, backend, keyring, b"undone")
    savepoint.rollback()
    # The new object goes at once; the deletion is forgotten, so the outer commit keeps
    # the object its row still names.
    assert [o.key for o in backend.iter_objects()] == [kept.storage_key]
    outer = store(session, backend, keyring, b"outer")
    session.commit()
    assert sorted(o.key for o in backend.iter_objects()) == sorted(
        [kept.storage_key, outer.storage_key]
    )
    assert read(session, backend, keyring, kept.id) == b"kept"


class _FailingBackend(LocalDirectoryBackend):
    """A disk that fills up after a few chunks."""

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        def limited() -> Iterator[bytes]:
            for index, chunk in enumerate(chunks):
                if index == 3:
                    raise OSError(28, "No space left on device")
                yield chunk

        return super().put(key, limited())


def test_a_failing_backend_fails_the_store_and_leaves_nothing(
    session: Session, tmp_path: Path, keyring: KeyRing
) -> None:
    backend = _FailingBackend(tmp_path / "full")
    with pytest.raises(OSError, match="No space"):
        store(session, backend, keyring, os.urandom(2 * MiB), chunk_size=64 * 1024)
    assert list(backend.iter_objects()) == []
    assert list(backend.iter_partial_files()) == []
    assert session.scalar(select(func.count()).select_from(VaultBlob)) == 0


def test_mutable_source_buffers_are_hashed_as_they_were(
    session: Session, backend: BlobBackend, keyring: KeyRing
) -> None:
    # A source that reuses one buffer: what was yielded must be what is hashed and sealed.
    buffer = bytearray(1000)

    def reusing() -> Iterator[bytes]:
        for value in range(20):
            buffer[:] = bytes([value]) * 1000
            yield cast(bytes, buffer)  # deliberately a mutable buffer, as some sources yield

    blob = store_blob(
        session,
        backend,
        owner=ALICE,
        stream=reusing(),
        media_type="text/plain",
        max_bytes=MiB,
        keyring=keyring,
        chunk_size=256,
    )
    expected = b"".join(bytes([value]) * 1000 for value in range(20))
    assert read(session, backend, keyring, blob.id) == expected


def test_the_bound_vault_for_other_domains(
    session: Session, tmp_path: Path, kek_path: Path, keyring: KeyRing
) -> None:
    settings = Settings(
        mode=Mode.PRODUCTION,
        data_dir=tmp_path,
        kek_path=kek_path,
        vault_url=(tmp_path / "bound").as_uri(),
    )
    vault = Vault.from_settings(settings)
    assert vault.keyring.current == keyring.current
    blob = vault.store_blob(
        session, owner=ALICE, stream=[b"via the facade"], media_type="text/plain", max_bytes=100
    )
    assert b"".join(vault.open_blob(session, blob.id)) == b"via the facade"
    vault.delete_blob(session, blob.id, actor=ALICE)
    session.commit()
    assert list(vault.backend.iter_objects()) == []
