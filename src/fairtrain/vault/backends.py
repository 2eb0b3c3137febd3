"""Where sealed blobs are kept: a local directory (the default) or S3-compatible storage.

Backends see ciphertext only and know nothing of keys or rows. Both keep memory bounded
while writing a stream of any length, and neither ever shows a half-written object under
its final name: the local backend renames a fsynced temporary file into place; the S3
backend completes a multipart upload only after its last part (and aborts it on any
failure, so the parts are not left billed and dangling).

Choose one by URL (``Settings.effective_vault_url``):

* ``file:///var/lib/fairtrain/vault``
* ``s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1&prefix=vault/``
  (credentials come from boto3's usual chain: environment, profile, instance role).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

from fairtrain.vault.crypto import Readable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__all__ = [
    "BlobBackend",
    "LocalDirectoryBackend",
    "ObjectMissing",
    "S3Backend",
    "StoredObject",
    "backend_from_url",
]

# S3 parts must be at least 5 MiB (except the last); 8 MiB keeps memory small and the
# part count of a 2 GB upload far below the 10,000-part limit.
DEFAULT_PART_SIZE = 8 << 20
_TEMP_PREFIX = ".tmp-"
_WRITEBACK_EVERY = 8 << 20


def _start_writeback(descriptor: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting for it.

    On Linux, POSIX_FADV_DONTNEED starts asynchronous writeback of dirty pages (and drops
    clean ones: nobody reads ciphertext back soon). Disk writes then overlap hashing and
    encryption instead of all piling up in the final fsync, which stays the durability
    point. Elsewhere it is a harmless hint.
    """
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(descriptor, offset, length, os.POSIX_FADV_DONTNEED)


class ObjectMissing(LookupError):
    """No object is stored under this key."""


class _Empty:
    def read(self, size: int = -1, /) -> bytes:
        return b""


_EMPTY = _Empty()


class _Bounded:
    """At most ``limit`` bytes of a stream (a local file read from an offset)."""

    def __init__(self, source: Readable, limit: int) -> None:
        self._source = source
        self._left = max(limit, 0)

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        piece = self._source.read(wanted)
        self._left -= len(piece)
        return piece


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    modified_at: datetime


@runtime_checkable
class BlobBackend(Protocol):
    """The operations the vault needs from a store of opaque objects."""

    url: str

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the stream under ``key``; return its size. All or nothing."""
        ...

    def open(self, key: str) -> AbstractContextManager[Readable]:
        """A readable stream of the object (raises ``ObjectMissing``)."""
        ...

    def open_range(self, key: str, start: int, stop: int) -> AbstractContextManager[Readable]:
        """A readable stream of bytes ``start`` .. ``stop - 1`` of the object (fewer when
        the object is shorter); raises ``ObjectMissing``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def check(self) -> None:
        """Raise when the store cannot be reached (readiness)."""
        ...

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every complete object (for verification, orphan sweeps and plaintext scans)."""
        ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid storage key {key!r}")
    if any(part.startswith(_TEMP_PREFIX) for part in parts):
        raise ValueError(f"storage keys may not start with {_TEMP_PREFIX!r}")
    return key


class LocalDirectoryBackend:
    """Objects as files under one directory, written crash-safely."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # as put() makes it
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"the vault directory {self.root} is not writable")

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = target.with_name(f"{_TEMP_PREFIX}{secrets.token_hex(8)}")
        size = 0
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                flushed = 0
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                    if size - flushed >= _WRITEBACK_EVERY:
                        handle.flush()
                        _start_writeback(handle.fileno(), flushed, size - flushed)
                        flushed = size
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        # Make the rename itself durable, so a crash cannot lose a committed blob.
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return size

    @contextmanager
    def _reader(self, path: Path) -> Iterator[Readable]:
        with path.open("rb") as handle:
            yield handle

    def open(self, key: str) -> AbstractContextManager[Readable]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(key)
        return self._reader(path)

    @contextmanager
    def _range_reader(self, path: Path, start: int, stop: int) -> Iterator[Readable]:
        with path.open("rb") as handle:
            handle.seek(start)
            yield _Bounded(handle, stop - start)

    def open_range(self, key: str, start: int, stop: int) -> AbstractContextManager[Readable]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(key)
        return self._range_reader(path, start, stop)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def iter_objects(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for directory, _dirs, files in os.walk(self.root):
            for name in sorted(files):
                if name.startswith(_TEMP_PREFIX):
                    continue
                path = Path(directory) / name
                with suppress(FileNotFoundError):
                    stat = path.stat()
                    yield StoredObject(
                        key=path.relative_to(self.root).as_posix(),
                        size=stat.st_size,
                        modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                    )

    def iter_partial_files(self) -> Iterator[Path]:
        """Temporary files of writes that never finished (a crash); safe to delete."""
        if self.root.is_dir():
            yield from self.root.rglob(f"{_TEMP_PREFIX}*")


class S3Backend:
    """Objects in an S3-compatible bucket; large streams go up as multipart uploads."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        part_size: int = DEFAULT_PART_SIZE,
        client: S3Client | None = None,
    ) -> None:
        if part_size < 5 << 20:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        query = "&".join(
            f"{name}={value}"
            for name, value in (("endpoint", endpoint_url), ("region", region), ("prefix", prefix))
            if value
        )
        self.url = f"s3://{bucket}" + (f"?{query}" if query else "")
        if client is None:
            import boto3  # imported here: the embedded default never needs it

            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self.client = client

    def _object_key(self, key: str) -> str:
        return self.prefix + _check_key(key)

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        name = self._object_key(key)
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=name
                        )["UploadId"]
                    part = bytes(buffer[: self.part_size])
                    del buffer[: self.part_size]
                    number = len(parts) + 1
                    etag = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=part,
                    )["ETag"]
                    parts.append({"ETag": etag, "PartNumber": number})
            if upload_id is None:
                # Small objects go up in one request; S3 makes them visible atomically.
                self.client.put_object(Bucket=self.bucket, Key=name, Body=bytes(buffer))
                return size
            if buffer:
                number = len(parts) + 1
                etag = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=bytes(buffer),
                )["ETag"]
                parts.append({"ETag": etag, "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                with suppress(Exception):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload_id
                    )
            raise
        return size

    @contextmanager
    def _reader(self, name: str, byte_range: str | None = None) -> Iterator[Readable]:
        from botocore.exceptions import ClientError

        try:
            if byte_range is None:
                body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
            else:
                body = self.client.get_object(Bucket=self.bucket, Key=name, Range=byte_range)[
                    "Body"
                ]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                raise ObjectMissing(name) from exc
            if code == "InvalidRange":  # the object is shorter than the range asked for
                yield _Bounded(_EMPTY, 0)
                return
            raise
        try:
            yield body
        finally:
            body.close()

    def open(self, key: str) -> AbstractContextManager[Readable]:
        return self._reader(self._object_key(key))

    def open_range(self, key: str, start: int, stop: int) -> AbstractContextManager[Readable]:
        if stop <= start:
            return nullcontext(_Bounded(_EMPTY, 0))
        # One ranged GET: the store sends only these bytes (a resumed download of a large
        # export shard never pulls the part the buyer already has).
        return self._reader(self._object_key(key), byte_range=f"bytes={start}-{stop - 1}")

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def iter_objects(self) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for entry in page.get("Contents", []):
                yield StoredObject(
                    key=entry["Key"][len(self.prefix) :],
                    size=entry["Size"],
                    modified_at=entry["LastModified"].astimezone(UTC),
                )

    def iter_incomplete_uploads(self) -> Iterator[tuple[str, str]]:
        """(key, upload id) of multipart uploads never completed nor aborted."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                yield upload["Key"], upload["UploadId"]


def backend_from_url(url: str) -> BlobBackend:
    """``file:///dir`` or ``s3://bucket?endpoint=…&region=…&prefix=…``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URLs must name a local path: {url}")
        return LocalDirectoryBackend(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"s3 URLs must name a bucket: {url}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region", "prefix", "part_size"}
        if unknown:
            raise ValueError(f"unknown s3 URL parameters: {', '.join(sorted(unknown))}")
        return S3Backend(
            parts.netloc,
            endpoint_url=query.get("endpoint"),
            region=query.get("region"),
            prefix=query.get("prefix", ""),
            part_size=int(query.get("part_size", DEFAULT_PART_SIZE)),
        )
    raise ValueError(f"unsupported vault URL scheme {parts.scheme!r} (use file:// or s3://)")
