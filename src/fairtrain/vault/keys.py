"""Envelope keys: per-contributor data keys wrapped by the key-encryption key (KEK).

Blobs are sealed with their contributor's 256-bit data key; the database stores that key
only wrapped (AES-256-GCM) by the KEK, which lives in a file outside the database
(``Settings.effective_kek_path``: 32 random bytes, base64). So a database dump alone
decrypts nothing, a KEK rotation re-wraps a few hundred bytes per contributor instead
of re-encrypting every blob, and destroying one wrapped data key (crypto-shredding)
makes that contributor's blobs unreadable while everyone else's stay intact.

Each KEK has an id derived from it (an HMAC, so the id reveals nothing about the key);
every wrapped key records the id of the KEK that wrapped it. During a rotation the old
KEK is kept beside the new one as ``<kek file>.<id>.retired`` and the ``KeyRing`` loads
both, so a rotation interrupted at any point leaves every data key unwrappable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fairtrain.config import Settings

__all__ = [
    "KEK_SIZE",
    "DataKeyCache",
    "KekUnavailable",
    "KeyEncryptionKey",
    "KeyRing",
    "KeyUnwrapError",
    "generate_data_key",
    "generate_kek_file",
    "kek_id_for",
    "load_kek_file",
    "retired_kek_path",
    "retired_kek_paths",
    "write_kek_file",
]

KEK_SIZE = 32
DATA_KEY_SIZE = 32
_WRAP_NONCE_SIZE = 12
_WRAP_CONTEXT = b"fairtrain/vault/data-key/v1"
_KEK_ID_CONTEXT = b"fairtrain/vault/kek-id/v1"


class KekUnavailable(RuntimeError):
    """The key-encryption key file is missing or unreadable (a deployment error)."""


class KeyUnwrapError(RuntimeError):
    """A wrapped data key does not open with the KEK it names (wrong KEK or tampered row)."""


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    id: str
    secret: bytes = field(repr=False)


def kek_id_for(secret: bytes) -> str:
    """A stable, non-secret name for a KEK: 16 hex characters of an HMAC under the key."""
    return hmac.new(secret, _KEK_ID_CONTEXT, hashlib.sha256).hexdigest()[:16]


def generate_data_key() -> bytes:
    return secrets.token_bytes(DATA_KEY_SIZE)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_kek_file(path: Path, secret: bytes) -> KeyEncryptionKey:
    """Write a KEK atomically (temp file, fsync, rename), readable by its owner only."""
    if len(secret) != KEK_SIZE:
        raise ValueError("a KEK is 32 bytes")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(base64.b64encode(secret) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return KeyEncryptionKey(id=kek_id_for(secret), secret=secret)


def generate_kek_file(path: Path) -> KeyEncryptionKey:
    return write_kek_file(path, secrets.token_bytes(KEK_SIZE))


def load_kek_file(path: Path) -> KeyEncryptionKey:
    try:
        text = path.read_bytes().strip()
    except FileNotFoundError as exc:
        raise KekUnavailable(f"the vault key-encryption key file {path} does not exist") from exc
    except OSError as exc:
        raise KekUnavailable(f"cannot read the vault key-encryption key file {path}") from exc
    try:
        secret = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise KekUnavailable(f"{path} is not base64") from exc
    if len(secret) != KEK_SIZE:
        raise KekUnavailable(f"{path} must hold 32 bytes (base64), not {len(secret)}")
    return KeyEncryptionKey(id=kek_id_for(secret), secret=secret)


def retired_kek_path(path: Path, kek_id: str) -> Path:
    return path.with_name(f"{path.name}.{kek_id}.retired")


def retired_kek_paths(path: Path) -> list[Path]:
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f"{path.name}.*.retired"))


def _wrap_aad(key_id: str, kek_id: str) -> bytes:
    # Binding the data-key row id means a wrapped key copied onto another contributor's
    # row does not open there.
    return b"|".join((_WRAP_CONTEXT, key_id.encode("ascii"), kek_id.encode("ascii")))


class KeyRing:
    """The current KEK plus any retired ones still needed to unwrap older data keys."""

    def __init__(
        self,
        current: KeyEncryptionKey,
        retired: Mapping[str, KeyEncryptionKey] | None = None,
        *,
        path: Path | None = None,
    ) -> None:
        self._path = path
        self._stamp = self._file_stamp()
        self._current = current
        self._keks = {**(retired or {}), current.id: current}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> KeyRing:
        """Load ``path`` and its retired siblings; create ``path`` first when allowed."""
        if create and not path.exists():
            generate_kek_file(path)
        current = load_kek_file(path)
        retired = {kek.id: kek for kek in map(load_kek_file, retired_kek_paths(path))}
        return cls(current, retired, path=path)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Demo/dev create a missing KEK file; production refuses to run without one."""
        return cls.from_file(settings.effective_kek_path, create=settings.is_relaxed)

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns)

    def _refresh(self) -> None:
        # Another process may have rotated the KEK: a stat per call notices the renamed
        # file, so new data keys are wrapped with the new KEK, not the retired one.
        if self._path is None or self._file_stamp() == self._stamp:
            return
        with self._lock:
            fresh = KeyRing.from_file(self._path)
            self._keks.update(fresh._keks)
            self._current = fresh._current
            self._stamp = fresh._stamp

    @property
    def current(self) -> KeyEncryptionKey:
        self._refresh()
        return self._current

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        if kek_id not in self._keks:
            self._refresh()
        try:
            return self._keks[kek_id]
        except KeyError:
            raise KeyUnwrapError(
                f"no key-encryption key with id {kek_id} is available (retired file removed?)"
            ) from None

    def wrap(self, data_key: bytes, *, key_id: str, kek: KeyEncryptionKey | None = None) -> bytes:
        """``nonce || AES-GCM(kek, data_key)``; the KEK id is stored next to it by the caller."""
        kek = kek or self.current
        nonce = secrets.token_bytes(_WRAP_NONCE_SIZE)
        return nonce + AESGCM(kek.secret).encrypt(nonce, data_key, _wrap_aad(key_id, kek.id))

    def unwrap(self, wrapped: bytes, *, key_id: str, kek_id: str) -> bytes:
        kek = self.kek(kek_id)
        nonce, sealed = wrapped[:_WRAP_NONCE_SIZE], wrapped[_WRAP_NONCE_SIZE:]
        try:
            data_key = AESGCM(kek.secret).decrypt(nonce, sealed, _wrap_aad(key_id, kek_id))
        except InvalidTag as exc:
            raise KeyUnwrapError(f"data key {key_id} does not open with KEK {kek_id}") from exc
        if len(data_key) != DATA_KEY_SIZE:
            raise KeyUnwrapError(f"data key {key_id} has the wrong length")
        return data_key


class DataKeyCache:
    """A small LRU of unwrapped data keys, so streaming many blobs skips the unwrap.

    Entries are keyed by the wrapped bytes as well as the key id: a caller always reads the
    key row first, so once a row is shredded (wrapped key nulled) no entry can match it,
    even in a process that never saw the shred. ``forget`` drops key material early.
    """

    def __init__(self, maxsize: int = 64) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[tuple[str, str, bytes], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str, kek_id: str, wrapped: bytes) -> bytes | None:
        with self._lock:
            entry = self._entries.get((key_id, kek_id, wrapped))
            if entry is not None:
                self._entries.move_to_end((key_id, kek_id, wrapped))
            return entry

    def put(self, key_id: str, kek_id: str, wrapped: bytes, data_key: bytes) -> None:
        with self._lock:
            self._entries[(key_id, kek_id, wrapped)] = data_key
            self._entries.move_to_end((key_id, kek_id, wrapped))
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def forget(self, key_id: str) -> None:
        with self._lock:
            for entry in [entry for entry in self._entries if entry[0] == key_id]:
                del self._entries[entry]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
