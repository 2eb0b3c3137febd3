"""The platform's Ed25519 signing key: load it, create it in demo/dev, name it.

The key signs audit checkpoints (and later receipts and licences). Its id is the SHA-256
of the raw 32-byte public key, in hex: anyone holding the public key can recompute it, so
an auditor compares one short string with the id the platform publishes.

Outside demo/dev mode the key is never created on the fly: a production server that
silently made itself a new key would sign checkpoints nobody can tie to the old ones.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from fairtrain.config import Settings

__all__ = [
    "SigningKeyUnavailable",
    "key_id",
    "load_public_key_pem",
    "load_signing_key",
    "platform_signing_key",
    "public_key_pem",
    "write_signing_key",
]


class SigningKeyUnavailable(RuntimeError):
    """The platform signing key is missing or unreadable (a deployment error)."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_pem(pem: bytes) -> Ed25519PublicKey:
    """Parse an exported public key; anything but Ed25519 is refused with ValueError."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise SigningKeyUnavailable(
            f"cannot read the platform signing key at {path}: {error.strerror}"
        ) from error
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyUnavailable(
            f"{path} is not an unencrypted PEM private key: {error}"
        ) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyUnavailable(f"{path} holds a private key that is not Ed25519")
    return key


def write_signing_key(path: Path) -> Ed25519PrivateKey:
    """Create a new key file (mode 0600) at ``path``; never overwrites an existing one.

    Written to a temporary file and hard-linked into place, so a concurrent reader sees
    either no file or the whole key, and of two processes racing only one key wins.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp files are already 0600
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_signing_key(path)
    finally:
        os.unlink(temporary)
    return key


def platform_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The key at ``settings.effective_signing_key_path``; created there only in demo/dev."""
    path = settings.effective_signing_key_path
    if path.exists() or not settings.is_relaxed:
        if not path.exists():
            raise SigningKeyUnavailable(
                f"the platform signing key {path} does not exist; set "
                "FAIRTRAIN_SIGNING_KEY_PATH to an Ed25519 PEM private key (see "
                "docs/audit.md), or run in demo/dev mode to have one created"
            )
        return load_signing_key(path)
    return write_signing_key(path)
