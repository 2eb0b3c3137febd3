"""Key files, wrapping of data keys, and the unwrapped-key cache."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import pytest

from fairtrain.config import Mode, Settings
from fairtrain.vault.keys import (
    KEK_SIZE,
    DataKeyCache,
    KekUnavailable,
    KeyEncryptionKey,
    KeyRing,
    KeyUnwrapError,
    generate_data_key,
    generate_kek_file,
    kek_id_for,
    load_kek_file,
    retired_kek_path,
    retired_kek_paths,
    write_kek_file,
)


def test_kek_file_round_trip_is_private_and_named_by_an_hmac(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "kek.b64"
    written = generate_kek_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_kek_file(path)
    assert loaded == written
    assert loaded.id == kek_id_for(loaded.secret)
    assert len(loaded.id) == 16
    assert loaded.secret.hex()[:16] != loaded.id
    assert "secret" not in repr(loaded)
    assert list(tmp_path.joinpath("keys").iterdir()) == [path]  # no temp file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not base64!!", "not base64"),
        (base64.b64encode(b"short"), "32 bytes"),
    ],
)
def test_bad_kek_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "kek.b64"
    path.write_bytes(content)
    with pytest.raises(KekUnavailable, match=message):
        load_kek_file(path)


def test_missing_or_unreadable_kek_file(tmp_path: Path) -> None:
    with pytest.raises(KekUnavailable, match="does not exist"):
        load_kek_file(tmp_path / "absent")
    with pytest.raises(KekUnavailable, match="cannot read"):
        load_kek_file(tmp_path)  # a directory
    with pytest.raises(ValueError, match="32 bytes"):
        write_kek_file(tmp_path / "k", b"short")


def test_production_refuses_a_missing_kek_and_dev_creates_one(tmp_path: Path) -> None:
    production = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path)
    with pytest.raises(KekUnavailable):
        KeyRing.from_settings(production)
    assert not production.effective_kek_path.exists()
    dev = Settings(mode=Mode.DEV, data_dir=tmp_path)
    ring = KeyRing.from_settings(dev)
    assert dev.effective_kek_path.is_file()
    # Production with the file now present loads the same key.
    assert KeyRing.from_settings(production).current == ring.current


def test_wrap_and_unwrap(tmp_path: Path) -> None:
    ring = KeyRing.from_file(tmp_path / "kek.b64", create=True)
    data_key = generate_data_key()
    wrapped = ring.wrap(data_key, key_id="vky_a")
    assert data_key not in wrapped
    assert ring.unwrap(wrapped, key_id="vky_a", kek_id=ring.current.id) == data_key


def test_a_wrapped_key_does_not_open_on_another_row_or_after_tampering(tmp_path: Path) -> None:
    ring = KeyRing.from_file(tmp_path / "kek.b64", create=True)
    wrapped = ring.wrap(generate_data_key(), key_id="vky_a")
    with pytest.raises(KeyUnwrapError, match="does not open"):
        ring.unwrap(wrapped, key_id="vky_b", kek_id=ring.current.id)
    flipped = bytes([wrapped[0] ^ 1]) + wrapped[1:]
    with pytest.raises(KeyUnwrapError):
        ring.unwrap(flipped, key_id="vky_a", kek_id=ring.current.id)
    with pytest.raises(KeyUnwrapError, match="no key-encryption key"):
        ring.unwrap(wrapped, key_id="vky_a", kek_id="0" * 16)


def test_a_wrong_length_data_key_is_refused() -> None:
    kek = KeyEncryptionKey(id="x", secret=secrets.token_bytes(KEK_SIZE))
    ring = KeyRing(kek)
    wrapped = ring.wrap(b"sixteen byte key", key_id="vky_a")
    with pytest.raises(KeyUnwrapError, match="wrong length"):
        ring.unwrap(wrapped, key_id="vky_a", kek_id="x")


def test_retired_keks_are_loaded_beside_the_current_one(tmp_path: Path) -> None:
    path = tmp_path / "kek.b64"
    old = generate_kek_file(path)
    wrapped = KeyRing.from_file(path).wrap(b"k" * 32, key_id="vky_a")
    write_kek_file(retired_kek_path(path, old.id), old.secret)
    new = generate_kek_file(path)
    assert retired_kek_paths(path) == [retired_kek_path(path, old.id)]
    ring = KeyRing.from_file(path)
    assert ring.current == new
    assert ring.unwrap(wrapped, key_id="vky_a", kek_id=old.id) == b"k" * 32
    assert retired_kek_paths(tmp_path / "nowhere" / "kek.b64") == []


def test_a_ring_notices_a_rotation_made_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "kek.b64"
    ring = KeyRing.from_file(path, create=True)
    old = ring.current
    write_kek_file(retired_kek_path(path, old.id), old.secret)
    new = generate_kek_file(path)
    # Same second, different inode: the rename is what is noticed.
    assert ring.current == new
    assert ring.kek(old.id) == old
    wrapped_elsewhere = KeyRing.from_file(path).wrap(b"z" * 32, key_id="vky_z")
    assert ring.unwrap(wrapped_elsewhere, key_id="vky_z", kek_id=new.id) == b"z" * 32


def test_a_ring_without_a_file_never_refreshes() -> None:
    kek = KeyEncryptionKey(id="fixed", secret=os.urandom(KEK_SIZE))
    assert KeyRing(kek).current == kek


def test_data_key_cache_is_a_small_lru_keyed_by_the_wrapped_bytes() -> None:
    cache = DataKeyCache(maxsize=2)
    cache.put("vky_a", "kek1", b"wrapped-a", b"A")
    cache.put("vky_b", "kek1", b"wrapped-b", b"B")
    assert cache.get("vky_a", "kek1", b"wrapped-a") == b"A"  # now most recent
    cache.put("vky_c", "kek1", b"wrapped-c", b"C")
    assert cache.get("vky_b", "kek1", b"wrapped-b") is None  # evicted
    assert len(cache) == 2
    # A row re-wrapped or nulled no longer matches.
    assert cache.get("vky_a", "kek2", b"rewrapped-a") is None
    cache.forget("vky_a")
    assert cache.get("vky_a", "kek1", b"wrapped-a") is None
    assert cache.get("vky_c", "kek1", b"wrapped-c") == b"C"
    cache.clear()
    assert len(cache) == 0
