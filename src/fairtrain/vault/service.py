"""Vault operations: store, read, delete and shred blobs; rotate the key-encryption key.

Storage is not transactional but the database is, so the two are kept in step this way:

* ``store_blob`` writes the object before its row; if the surrounding transaction rolls
  back, the object written in it is deleted again (a crash in between leaves an orphan
  that ``find_orphans`` reports and ``sweep_orphans`` removes).
* ``delete_blob`` marks the row and removes the object only after commit, so a rolled
  back deletion never loses data.

Every state change appends an audit event in the caller's transaction. Services flush;
the caller commits.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from fairtrain.audit.service import SYSTEM_ACTOR, append_event
from fairtrain.config import Settings, get_settings
from fairtrain.errors import Conflict, Gone, InvalidInput, NotFound, PayloadTooLarge
from fairtrain.ids import new_id, utcnow
from fairtrain.vault.backends import BlobBackend, ObjectMissing, StoredObject, backend_from_url
from fairtrain.vault.crypto import (
    DEFAULT_CHUNK_SIZE,
    TAG_SIZE,
    BlobIntegrityError,
    Readable,
    chunk_count,
    decrypt_chunks,
    decrypt_stream,
    encrypt_stream,
    header_size,
    read_header,
)
from fairtrain.vault.keys import (
    DataKeyCache,
    KeyRing,
    KeyUnwrapError,
    generate_data_key,
    generate_kek_file,
    load_kek_file,
    retired_kek_path,
    retired_kek_paths,
    write_kek_file,
)
from fairtrain.vault.models import BlobState, ContributorKey, VaultBlob

__all__ = [
    "BlobCheck",
    "BlobStore",
    "ShredReport",
    "Vault",
    "begin_store",
    "default_keyring",
    "delete_blob",
    "find_orphans",
    "open_blob",
    "open_blob_range",
    "open_secret",
    "prune_retired_keks",
    "reset_default_keyring",
    "rotate_kek",
    "seal_secret",
    "shred_owner",
    "store_blob",
    "sweep_orphans",
    "verify_blobs",
]

log = logging.getLogger(__name__)

_OWNER_REF = re.compile(r"^[a-z]+:[A-Za-z0-9_\-]{1,72}$")
_NEW_OBJECTS = "fairtrain.vault.new_objects"
_DOOMED_OBJECTS = "fairtrain.vault.doomed_objects"
_DATA_KEYS = DataKeyCache(maxsize=64)
# Chunks in flight between the reader, the hasher, the encryptor and the writer: enough to
# keep each busy, few enough that memory stays a few MiB per store.
_PIPELINE_DEPTH = 4
_default_keyring: KeyRing | None = None


def default_keyring() -> KeyRing:
    """The process's key ring, from ``get_settings()``, loaded once."""
    # One ring per process; rotation and tests reset it.
    global _default_keyring
    if _default_keyring is None:
        _default_keyring = KeyRing.from_settings(get_settings())
    return _default_keyring


def reset_default_keyring() -> None:
    global _default_keyring
    _default_keyring = None
    _DATA_KEYS.clear()


# -- storage kept in step with the transaction ------------------------------------------


@dataclass(slots=True)
class _PendingObject:
    backend: BlobBackend
    storage_key: str
    # The innermost transaction (maybe a savepoint) whose fate decides this object's.
    transaction: SessionTransaction | None


def _remember(session: Session, kind: str, backend: BlobBackend, storage_key: str) -> None:
    transaction = session.get_nested_transaction() or session.get_transaction()
    pending = _PendingObject(backend, storage_key, transaction)
    session.info.setdefault(kind, []).append(pending)


def _remember_new_object(session: Session, backend: BlobBackend, storage_key: str) -> None:
    _remember(session, _NEW_OBJECTS, backend, storage_key)


def _delete_after_commit(session: Session, backend: BlobBackend, storage_key: str) -> None:
    _remember(session, _DOOMED_OBJECTS, backend, storage_key)


def _delete_objects(objects: list[_PendingObject], why: str) -> None:
    for pending in objects:
        try:
            pending.backend.delete(pending.storage_key)
        except Exception:  # never mask the caller's outcome; the orphan sweep retries
            log.warning("could not delete vault object %s (%s)", pending.storage_key, why)


def _within(pending: _PendingObject, ended: SessionTransaction) -> bool:
    transaction = pending.transaction
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _split(session: Session, kind: str, ended: SessionTransaction) -> list[_PendingObject]:
    """Remove and return the pending objects registered inside ``ended``."""
    pending: list[_PendingObject] | None = session.info.get(kind)
    if not pending:
        return []
    undone = [item for item in pending if _within(item, ended)]
    session.info[kind] = [item for item in pending if not _within(item, ended)]
    return undone


# SQLAlchemy also fires "after_commit" when a SAVEPOINT is released; releasing a savepoint
# makes nothing durable, so storage changes wait for the outermost commit.
@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_NEW_OBJECTS, None)
    _delete_objects(session.info.pop(_DOOMED_OBJECTS, []), "deleted blob")


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Whatever was registered inside the rolled-back transaction (or savepoint) is undone:
    # the rows that named new objects are gone, and deletions did not happen.
    _split(session, _DOOMED_OBJECTS, previous_transaction)
    _delete_objects(_split(session, _NEW_OBJECTS, previous_transaction), "rolled back")


# -- keys -------------------------------------------------------------------------------


def _check_owner(owner: str) -> str:
    if not _OWNER_REF.fullmatch(owner):
        raise InvalidInput(
            "The owner must be a typed reference such as user:usr_….",
            code="vault_invalid_owner",
            pointer="owner",
        )
    return owner


def _live_key(session: Session, owner: str) -> ContributorKey | None:
    return session.scalars(
        select(ContributorKey).where(
            ContributorKey.owner == owner, ContributorKey.destroyed_at.is_(None)
        )
    ).first()


def _live_key_or_create(session: Session, owner: str, keyring: KeyRing) -> ContributorKey:
    existing = _live_key(session, owner)
    if existing is not None:
        return existing
    kek = keyring.current
    key = ContributorKey(id=new_id("vky"), owner=owner, kek_id=kek.id, created_at=utcnow())
    key.wrapped_key = keyring.wrap(generate_data_key(), key_id=key.id, kek=kek)
    try:
        # A savepoint, because two first uploads of one contributor may race: the partial
        # unique index lets one win and the other uses the winner's key.
        with session.begin_nested():
            session.add(key)
            session.flush()
    except IntegrityError:
        winner = _live_key(session, owner)
        if winner is None:
            raise
        return winner
    append_event(
        session,
        actor=SYSTEM_ACTOR,
        action="vault.key_created",
        subject=owner,
        payload={"key_id": key.id, "kek_id": kek.id},
    )
    return key


def _data_key(key: ContributorKey, keyring: KeyRing) -> bytes:
    if key.destroyed_at is not None or key.wrapped_key is None or key.kek_id is None:
        raise Gone(
            "This content was erased: its owner's encryption key has been destroyed.",
            code="vault_key_destroyed",
        )
    cached = _DATA_KEYS.get(key.id, key.kek_id, key.wrapped_key)
    if cached is not None:
        return cached
    try:
        data_key = keyring.unwrap(key.wrapped_key, key_id=key.id, kek_id=key.kek_id)
    except KeyUnwrapError as exc:
        raise Conflict(
            f"The data key {key.id} cannot be unwrapped: {exc}.", code="vault_integrity_error"
        ) from exc
    _DATA_KEYS.put(key.id, key.kek_id, key.wrapped_key, data_key)
    return data_key


# -- small secrets the platform must read again ------------------------------------------

_SECRET_CONTEXT = b"fairtrain/vault/secret/v1"
_SECRET_NONCE_SIZE = 12


def _secret_aad(context: str, key_id: str) -> bytes:
    return b"|".join((_SECRET_CONTEXT, context.encode("utf-8"), key_id.encode("ascii")))


def seal_secret(
    session: Session, keyring: KeyRing, *, owner: str, context: str, secret: bytes
) -> bytes:
    """A secret the platform must use again in the clear (a webhook's HMAC key), sealed
    under ``owner``'s data key: ``key id . nonce || AES-GCM``, bound to ``context`` (the
    row it belongs to). A database dump without the KEK reveals none of them, a sealed
    value copied onto another row does not open there, KEK rotation re-wraps the data key
    (so they stay readable) and shredding the owner destroys them."""
    key = _live_key_or_create(session, _check_owner(owner), keyring)
    nonce = secrets.token_bytes(_SECRET_NONCE_SIZE)
    sealed = AESGCM(_data_key(key, keyring)).encrypt(nonce, secret, _secret_aad(context, key.id))
    return key.id.encode("ascii") + b"." + nonce + sealed


def open_secret(session: Session, keyring: KeyRing, *, context: str, sealed: bytes) -> bytes:
    """The secret :func:`seal_secret` sealed for ``context``; ``410 vault_key_destroyed``
    once its owner's key was shredded, ``409 vault_integrity_error`` if it was altered or
    belongs to another row."""
    key_id, dot, rest = sealed.partition(b".")
    key = session.get(ContributorKey, key_id.decode("ascii", "replace")) if dot else None
    if key is None or len(rest) <= _SECRET_NONCE_SIZE:
        raise Conflict(
            f"The sealed secret of {context} is malformed.", code="vault_integrity_error"
        )
    nonce, ciphertext = rest[:_SECRET_NONCE_SIZE], rest[_SECRET_NONCE_SIZE:]
    try:
        return AESGCM(_data_key(key, keyring)).decrypt(
            nonce, ciphertext, _secret_aad(context, key.id)
        )
    except InvalidTag:
        raise Conflict(
            f"The sealed secret of {context} does not open: altered, or another row's.",
            code="vault_integrity_error",
        ) from None


# -- blobs ------------------------------------------------------------------------------


def _storage_key(blob_id: str) -> str:
    # Two characters of fan-out keep any one directory (or S3 listing page) small.
    token = blob_id.split("_", 1)[-1]
    return f"blobs/{token[:2]}/{blob_id}"


class _BackgroundDigest:
    """SHA-256 computed in a thread of its own (hashlib releases the GIL on large inputs).

    Hashing is the slowest step of a store (AES-GCM is several times faster); run beside
    the encryption it no longer adds to it.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=_PIPELINE_DEPTH)
        self._thread = threading.Thread(target=self._run, name="vault-hasher", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while (piece := self._pieces.get()) is not None:
            self._digest.update(piece)

    def update(self, piece: bytes) -> None:
        self._pieces.put(piece)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pieces.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self._digest.hexdigest()


@dataclass(slots=True)
class _PlaintextMeter:
    """Counts and hashes plaintext on its way to the cipher, and enforces the size limit."""

    max_bytes: int
    size: int = 0
    digest: _BackgroundDigest = field(default_factory=_BackgroundDigest)

    def through(self, source: Iterable[bytes] | Readable, piece_size: int) -> Iterator[bytes]:
        pieces: Iterable[bytes]
        if isinstance(source, Readable):
            pieces = iter(lambda: source.read(piece_size), b"")
        else:
            pieces = source
        for piece in pieces:
            self.size += len(piece)
            if self.size > self.max_bytes:
                raise PayloadTooLarge(
                    f"The content is larger than the {self.max_bytes:,} bytes allowed.",
                    code="vault_too_large",
                    extra={"max_bytes": self.max_bytes},
                )
            # bytes() copies only mutable buffers a source might reuse after yielding.
            self.digest.update(bytes(piece))
            yield piece


class _WriterAborted(Exception):
    """Raised into the backend's write when the producing side failed, so it keeps nothing."""


_END = object()
_ABORT = object()


def _put_in_background(backend: BlobBackend, storage_key: str, sealed: Iterator[bytes]) -> int:
    """``backend.put`` in a writer thread while this thread reads, hashes and encrypts.

    Writing (and the fsync or upload behind it) overlaps the CPU work instead of following
    it. The source is still consumed in the caller's thread, which matters for sources
    bound to it (an async request body pulled through ``anyio.from_thread``). If the
    producing side fails, the writer is told to abort, so the backend keeps nothing.
    """
    channel: queue.Queue[object] = queue.Queue(maxsize=_PIPELINE_DEPTH)
    writer_done = threading.Event()
    outcome: list[int] = []
    failure: list[BaseException] = []

    def drain() -> Iterator[bytes]:
        while True:
            item = channel.get()
            if item is _END:
                return
            if item is _ABORT:
                raise _WriterAborted
            assert isinstance(item, bytes)
            yield item

    def write() -> None:
        try:
            outcome.append(backend.put(storage_key, drain()))
        except BaseException as exc:
            failure.append(exc)
        finally:
            writer_done.set()

    def send(item: object) -> bool:
        while not writer_done.is_set():
            try:
                channel.put(item, timeout=0.05)
            except queue.Full:
                continue
            return True
        return False

    writer = threading.Thread(target=write, name="vault-writer", daemon=True)
    writer.start()
    try:
        for piece in sealed:
            if not send(piece):
                break
        else:
            send(_END)
    except BaseException:
        send(_ABORT)
        writer.join()
        raise
    writer.join()
    if failure:  # the backend failed (full disk, S3 error): its own error says why
        raise failure[0]
    return outcome[0]


class BlobStore:
    """A store in three steps, for a caller that wants the bytes moved off its thread.

    ``begin_store`` (in the session's thread) picks the owner's data key and the blob's
    id, and registers the object so that rolling the transaction back deletes it;
    ``write`` (in any thread: it touches no session) encrypts and stores the bytes;
    ``finish`` (in the session's thread again) records the blob and its audit event. The
    blob is visible only once ``finish`` ran and the transaction commits.
    """

    def __init__(
        self,
        backend: BlobBackend,
        *,
        owner: str,
        key_id: str,
        data_key: bytes,
        media_type: str,
        max_bytes: int,
        chunk_size: int,
    ) -> None:
        self._backend = backend
        self._owner = owner
        self._key_id = key_id
        self._data_key = data_key
        self._media_type = media_type
        self._meter = _PlaintextMeter(max_bytes=max_bytes)
        self._chunk_size = chunk_size
        self.blob_id = new_id("blb")
        self.storage_key = _storage_key(self.blob_id)
        self._written: int | None = None
        self._sha256: str | None = None

    def write(self, stream: Iterable[bytes] | Readable) -> None:
        """Encrypt ``stream`` and store it; an error leaves no object behind."""
        sealed = encrypt_stream(
            self._data_key,
            self._meter.through(stream, self._chunk_size),
            blob_id=self.blob_id,
            key_id=self._key_id,
            chunk_size=self._chunk_size,
        )
        try:
            self._written = _put_in_background(self._backend, self.storage_key, sealed)
            self._sha256 = self._meter.digest.hexdigest()
        finally:
            self._meter.digest.close()

    def finish(self, session: Session) -> VaultBlob:
        if self._written is None or self._sha256 is None:
            raise RuntimeError("finish() before write() completed")
        blob = VaultBlob(
            id=self.blob_id,
            owner=self._owner,
            key_id=self._key_id,
            storage_key=self.storage_key,
            sha256=self._sha256,
            plaintext_size=self._meter.size,
            ciphertext_size=self._written,
            media_type=self._media_type,
            created_at=utcnow(),
            state=BlobState.STORED,
        )
        session.add(blob)
        session.flush()
        append_event(
            session,
            actor=self._owner,
            action="vault.blob_stored",
            subject=f"blob:{blob.id}",
            payload={
                "key_id": self._key_id,
                "size": self._meter.size,
                "media_type": self._media_type,
            },
        )
        return blob


def begin_store(
    session: Session,
    backend: BlobBackend,
    *,
    owner: str,
    media_type: str,
    max_bytes: int,
    keyring: KeyRing | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> BlobStore:
    """The first step of a store (see ``BlobStore``)."""
    _check_owner(owner)
    keyring = keyring or default_keyring()
    key = _live_key_or_create(session, owner, keyring)
    store = BlobStore(
        backend,
        owner=owner,
        key_id=key.id,
        data_key=_data_key(key, keyring),
        media_type=media_type,
        max_bytes=max_bytes,
        chunk_size=chunk_size,
    )
    # Registered before a byte is written: a rollback deletes the object even when it
    # was being written in another thread (the caller waits for that thread first).
    _remember_new_object(session, backend, store.storage_key)
    return store


def store_blob(
    session: Session,
    backend: BlobBackend,
    *,
    owner: str,
    stream: Iterable[bytes] | Readable,
    media_type: str,
    max_bytes: int,
    keyring: KeyRing | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> VaultBlob:
    """Encrypt ``stream`` with ``owner``'s data key and store it; memory stays bounded.

    The plaintext is hashed while it is encrypted. Over ``max_bytes`` the write is
    abandoned with ``PayloadTooLarge`` and no object is left behind. An error raised by
    ``stream`` itself propagates the same way.
    """
    store = begin_store(
        session,
        backend,
        owner=owner,
        media_type=media_type,
        max_bytes=max_bytes,
        keyring=keyring,
        chunk_size=chunk_size,
    )
    store.write(stream)
    return store.finish(session)


def _get_blob(session: Session, blob_id: str) -> VaultBlob:
    blob = session.get(VaultBlob, blob_id)
    if blob is None:
        raise NotFound("No such blob in the vault.", code="vault_blob_not_found")
    return blob


def _integrity_error(blob: VaultBlob, reason: str) -> Conflict:
    return Conflict(
        f"Blob {blob.id} failed its integrity check: {reason}.",
        code="vault_integrity_error",
        extra={"blob_id": blob.id},
    )


def _plaintext(backend: BlobBackend, blob: VaultBlob, data_key: bytes) -> Iterator[bytes]:
    digest = hashlib.sha256()
    size = 0
    try:
        with backend.open(blob.storage_key) as source:
            for piece in decrypt_stream(
                data_key, source, expected_blob_id=blob.id, expected_key_id=blob.key_id
            ):
                digest.update(piece)
                size += len(piece)
                yield piece
    except ObjectMissing as exc:
        raise _integrity_error(blob, "the stored object is missing") from exc
    except BlobIntegrityError as exc:
        raise _integrity_error(blob, str(exc)) from exc
    if size != blob.plaintext_size or digest.hexdigest() != blob.sha256:
        raise _integrity_error(blob, "the content does not match its recorded hash")


def open_blob(
    session: Session,
    backend: BlobBackend,
    blob_id: str,
    *,
    keyring: KeyRing | None = None,
) -> Iterator[bytes]:
    """The blob's plaintext, streamed; checked against its hash when the stream ends.

    Refusals that need no reading (unknown, deleted, shredded) are raised here, before
    the first byte; corruption is raised by the iterator (``vault_integrity_error``), at
    the latest after the last chunk, so consumers must not act on the bytes before the
    iterator is exhausted.
    """
    blob = _get_blob(session, blob_id)
    if blob.state == BlobState.DELETED:
        raise Gone("This blob was deleted.", code="vault_blob_deleted")
    key = session.get(ContributorKey, blob.key_id)
    if key is None:
        raise _integrity_error(blob, "its data key row is missing")
    data_key = _data_key(key, keyring or default_keyring())
    return _plaintext(backend, blob, data_key)


def _plaintext_range(
    backend: BlobBackend, blob: VaultBlob, data_key: bytes, start: int, stop: int
) -> Iterator[bytes]:
    if start == stop:
        return
    try:
        head_size = header_size(blob.id, blob.key_id)
        with backend.open_range(blob.storage_key, 0, head_size) as source:
            header, _ = read_header(source)
        if header.blob_id != blob.id or header.key_id != blob.key_id:
            raise BlobIntegrityError("the stored object belongs to another blob or key")
        size = header.chunk_size
        block = size + TAG_SIZE
        first, last = start // size, (stop - 1) // size
        total = chunk_count(blob.plaintext_size, size)
        if blob.ciphertext_size != head_size + blob.plaintext_size + total * TAG_SIZE:
            raise BlobIntegrityError("the stored object's size does not match its row")
        begin = head_size + first * block
        end = min(head_size + (last + 1) * block, blob.ciphertext_size)
        with backend.open_range(blob.storage_key, begin, end) as source:
            for index, plaintext in decrypt_chunks(
                data_key, header, source, first=first, stop=last + 1, total=total
            ):
                offset = index * size
                yield plaintext[max(start - offset, 0) : stop - offset]
    except ObjectMissing as exc:
        raise _integrity_error(blob, "the stored object is missing") from exc
    except BlobIntegrityError as exc:
        raise _integrity_error(blob, str(exc)) from exc


def open_blob_range(
    session: Session,
    backend: BlobBackend,
    blob_id: str,
    *,
    start: int,
    stop: int,
    keyring: KeyRing | None = None,
) -> Iterator[bytes]:
    """Plaintext bytes ``start`` .. ``stop - 1`` of the blob, streamed (a resumed
    download, an HTTP range request).

    Only the chunks that hold the range are fetched and decrypted; each is authenticated
    with its position and whether it is the blob's last, so the bytes are as trustworthy
    as a whole read's, though the whole-content hash can only be checked by reading it
    all (the whole range goes through ``open_blob``, which does). Refusals that need no
    reading are raised here, before the first byte, as ``open_blob`` does.
    """
    blob = _get_blob(session, blob_id)
    if blob.state == BlobState.DELETED:
        raise Gone("This blob was deleted.", code="vault_blob_deleted")
    if not 0 <= start <= stop <= blob.plaintext_size:
        raise InvalidInput(
            f"Bytes {start} to {stop} are not within this blob of {blob.plaintext_size} bytes.",
            code="vault_invalid_range",
        )
    key = session.get(ContributorKey, blob.key_id)
    if key is None:
        raise _integrity_error(blob, "its data key row is missing")
    data_key = _data_key(key, keyring or default_keyring())
    if start == 0 and stop == blob.plaintext_size:
        return _plaintext(backend, blob, data_key)
    return _plaintext_range(backend, blob, data_key, start, stop)


def delete_blob(
    session: Session, backend: BlobBackend, blob_id: str, *, actor: str = SYSTEM_ACTOR
) -> None:
    """Mark the blob deleted; its object is removed once this transaction commits."""
    blob = _get_blob(session, blob_id)
    if blob.state == BlobState.DELETED:
        return
    previous = blob.state
    blob.state = BlobState.DELETED
    session.flush()
    _delete_after_commit(session, backend, blob.storage_key)
    append_event(
        session,
        actor=actor,
        action="vault.blob_deleted",
        subject=f"blob:{blob.id}",
        payload={"previous_state": str(previous)},
    )


@dataclass(frozen=True, slots=True)
class ShredReport:
    owner: str
    key_ids: tuple[str, ...]
    blobs_shredded: int
    shredded_at: datetime


def shred_owner(session: Session, owner: str, *, actor: str = SYSTEM_ACTOR) -> ShredReport:
    """Destroy ``owner``'s data key(s): every blob of theirs becomes unreadable for good.

    The wrapped key is nulled in its row, so no KEK can recover it. Copies of the old row
    in database backups stay wrapped by the KEK of their time; rotating the KEK (and
    pruning the retired one) after a shred also makes those useless.
    """
    _check_owner(owner)
    now = utcnow()
    keys = list(
        session.scalars(
            select(ContributorKey).where(
                ContributorKey.owner == owner, ContributorKey.destroyed_at.is_(None)
            )
        )
    )
    for key in keys:
        key.wrapped_key = None
        key.kek_id = None
        key.destroyed_at = now
        _DATA_KEYS.forget(key.id)
    result = session.execute(
        update(VaultBlob)
        .where(VaultBlob.owner == owner, VaultBlob.state == BlobState.STORED)
        .values(state=BlobState.SHREDDED)
        .execution_options(synchronize_session="fetch")
    )
    shredded = int(getattr(result, "rowcount", 0) or 0)
    session.flush()
    report = ShredReport(
        owner=owner,
        key_ids=tuple(key.id for key in keys),
        blobs_shredded=shredded,
        shredded_at=now,
    )
    append_event(
        session,
        actor=actor,
        action="vault.owner_shredded",
        subject=owner,
        payload={"key_ids": list(report.key_ids), "blobs": shredded},
    )
    return report


# -- key-encryption key rotation --------------------------------------------------------


def rotate_kek(session: Session, settings: Settings, *, actor: str = SYSTEM_ACTOR) -> int:
    """Re-wrap every live data key with a fresh KEK; blobs are not touched.

    Order matters for crash safety: the old KEK is first copied to a ``.retired`` file,
    then the new KEK replaces the key file, then the rows are re-wrapped in the caller's
    transaction. Whether that transaction commits or not, every row opens with one of the
    files on disk. Once it has committed, ``prune_retired_keks`` removes retired KEKs no
    row needs. Also finishes a rotation that was interrupted. Returns the keys re-wrapped.
    """
    path = settings.effective_kek_path
    old_ring = KeyRing.from_settings(settings)
    old = old_ring.current
    retired = retired_kek_path(path, old.id)
    if not retired.exists():
        write_kek_file(retired, old.secret)
    new = generate_kek_file(path)
    ring = KeyRing.from_file(path)
    keys = list(
        session.scalars(
            select(ContributorKey)
            .where(ContributorKey.destroyed_at.is_(None))
            .order_by(ContributorKey.id)
        )
    )
    rewrapped = 0
    for key in keys:
        if key.wrapped_key is None or key.kek_id is None or key.kek_id == new.id:
            continue
        data_key = ring.unwrap(key.wrapped_key, key_id=key.id, kek_id=key.kek_id)
        key.wrapped_key = ring.wrap(data_key, key_id=key.id, kek=new)
        key.kek_id = new.id
        rewrapped += 1
    session.flush()
    _DATA_KEYS.clear()
    reset_default_keyring()
    append_event(
        session,
        actor=actor,
        action="vault.kek_rotated",
        subject="vault:kek",
        payload={"old_kek_id": old.id, "new_kek_id": new.id, "keys_rewrapped": rewrapped},
    )
    return rewrapped


def prune_retired_keks(session: Session, settings: Settings) -> list[str]:
    """Delete retired KEK files that no data key row needs any more; return their ids.

    Run after the rotation has committed (the CLI does). A retired KEK still named by a
    row (a rotation that rolled back) is kept.
    """
    path = settings.effective_kek_path
    needed = set(
        session.scalars(
            select(ContributorKey.kek_id).where(ContributorKey.kek_id.is_not(None)).distinct()
        )
    )
    current = load_kek_file(path).id
    removed: list[str] = []
    for retired in retired_kek_paths(path):
        kek = load_kek_file(retired)
        if kek.id in needed or kek.id == current:
            continue
        retired.unlink()
        removed.append(kek.id)
    return removed


# -- verification and orphans -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlobCheck:
    blob_id: str
    owner: str
    ok: bool
    code: str | None = None
    detail: str | None = None


def verify_blobs(
    session: Session, backend: BlobBackend, *, keyring: KeyRing | None = None
) -> Iterator[BlobCheck]:
    """Decrypt every stored blob and check its hash (shredded and deleted ones are skipped)."""
    keyring = keyring or default_keyring()
    blobs = session.scalars(
        select(VaultBlob).where(VaultBlob.state == BlobState.STORED).order_by(VaultBlob.id)
    )
    for blob in blobs:
        try:
            for _piece in open_blob(session, backend, blob.id, keyring=keyring):
                pass
        except (Conflict, Gone) as exc:
            yield BlobCheck(blob.id, blob.owner, ok=False, code=exc.code, detail=exc.detail)
        else:
            yield BlobCheck(blob.id, blob.owner, ok=True)


def find_orphans(
    session: Session, backend: BlobBackend, *, grace: timedelta = timedelta(hours=1)
) -> list[StoredObject]:
    """Objects that no stored or shredded blob row names, older than ``grace``.

    The grace period skips objects of uploads still in flight (written, row not yet
    committed).
    """
    wanted = set(
        session.scalars(select(VaultBlob.storage_key).where(VaultBlob.state != BlobState.DELETED))
    )
    cutoff = utcnow() - grace
    return [
        stored
        for stored in backend.iter_objects()
        if stored.key not in wanted and stored.modified_at <= cutoff
    ]


def sweep_orphans(
    session: Session,
    backend: BlobBackend,
    *,
    grace: timedelta = timedelta(hours=1),
    actor: str = SYSTEM_ACTOR,
) -> list[str]:
    """Delete the objects ``find_orphans`` reports; return their keys."""
    removed = [stored.key for stored in find_orphans(session, backend, grace=grace)]
    for key in removed:
        backend.delete(key)
    if removed:
        append_event(
            session,
            actor=actor,
            action="vault.orphans_swept",
            subject="vault:storage",
            payload={"objects": len(removed)},
        )
    return removed


# -- one object to hand to other domains ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vault:
    """The service functions bound to one backend and key ring.

    What the app builds once from its settings and hands to ingest (``app.state``), so
    callers need neither and the key ring always matches the settings the app runs with.
    """

    backend: BlobBackend
    keyring: KeyRing

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        return cls(
            backend=backend_from_url(settings.effective_vault_url),
            keyring=KeyRing.from_settings(settings),
        )

    def store_blob(
        self,
        session: Session,
        *,
        owner: str,
        stream: Iterable[bytes] | Readable,
        media_type: str,
        max_bytes: int,
    ) -> VaultBlob:
        return store_blob(
            session,
            self.backend,
            owner=owner,
            stream=stream,
            media_type=media_type,
            max_bytes=max_bytes,
            keyring=self.keyring,
        )

    def begin_store(
        self, session: Session, *, owner: str, media_type: str, max_bytes: int
    ) -> BlobStore:
        return begin_store(
            session,
            self.backend,
            owner=owner,
            media_type=media_type,
            max_bytes=max_bytes,
            keyring=self.keyring,
        )

    def open_blob(self, session: Session, blob_id: str) -> Iterator[bytes]:
        return open_blob(session, self.backend, blob_id, keyring=self.keyring)

    def open_blob_range(
        self, session: Session, blob_id: str, *, start: int, stop: int
    ) -> Iterator[bytes]:
        return open_blob_range(
            session, self.backend, blob_id, start=start, stop=stop, keyring=self.keyring
        )

    def delete_blob(self, session: Session, blob_id: str, *, actor: str = SYSTEM_ACTOR) -> None:
        delete_blob(session, self.backend, blob_id, actor=actor)
