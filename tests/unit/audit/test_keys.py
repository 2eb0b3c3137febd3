"""The platform signing key: created only in demo/dev, refused clearly otherwise."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairtrain.audit.keys import (
    SigningKeyUnavailable,
    key_id,
    load_public_key_pem,
    load_signing_key,
    platform_signing_key,
    public_key_pem,
    write_signing_key,
)
from fairtrain.config import Mode, Settings


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_dev_mode_creates_a_private_key_once(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.DEV, data_dir=tmp_path)
    first = platform_signing_key(settings)
    path = settings.effective_signing_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = platform_signing_key(settings)
    assert _raw_public(first) == _raw_public(again)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_production_refuses_a_missing_key_and_names_the_setting(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path)
    with pytest.raises(SigningKeyUnavailable, match="FAIRTRAIN_SIGNING_KEY_PATH"):
        platform_signing_key(settings)
    assert not settings.effective_signing_key_path.exists()


def test_production_loads_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "platform.pem"
    created = write_signing_key(path)
    settings = Settings(mode=Mode.PRODUCTION, signing_key_path=path)
    assert _raw_public(platform_signing_key(settings)) == _raw_public(created)


def test_write_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = write_signing_key(path)
    second = write_signing_key(path)
    assert _raw_public(first) == _raw_public(second)


def test_unreadable_or_foreign_keys_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(SigningKeyUnavailable, match="not an unencrypted PEM"):
        load_signing_key(garbage)
    with pytest.raises(SigningKeyUnavailable, match="cannot read"):
        load_signing_key(tmp_path / "missing.pem")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    foreign = tmp_path / "ec.pem"
    foreign.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SigningKeyUnavailable, match="not Ed25519"):
        load_signing_key(foreign)
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="not an Ed25519"):
        load_public_key_pem(ec_public)


def test_key_id_is_sha256_of_the_raw_public_key() -> None:
    key = Ed25519PrivateKey.generate()
    assert key_id(key.public_key()) == hashlib.sha256(_raw_public(key)).hexdigest()
    restored = load_public_key_pem(public_key_pem(key.public_key()))
    assert key_id(restored) == key_id(key.public_key())
