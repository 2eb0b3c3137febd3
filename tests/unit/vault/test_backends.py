"""Both storage backends: all-or-nothing writes, bounded memory, listing, URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy_boto3_s3 import S3Client

from fairtrain.vault.backends import (
    BlobBackend,
    LocalDirectoryBackend,
    ObjectMissing,
    S3Backend,
    backend_from_url,
)


class Boom(Exception):
    pass


def failing_stream(pieces: int, piece_size: int) -> Iterator[bytes]:
    for _ in range(pieces):
        yield os.urandom(piece_size)
    raise Boom


def read_all(backend: BlobBackend, key: str) -> bytes:
    with backend.open(key) as source:
        return source.read()


def test_put_open_exists_delete(backend: BlobBackend) -> None:
    assert backend.put("blobs/ab/one", [b"hello ", b"world"]) == 11
    assert backend.exists("blobs/ab/one")
    assert read_all(backend, "blobs/ab/one") == b"hello world"
    assert [(o.key, o.size) for o in backend.iter_objects()] == [("blobs/ab/one", 11)]
    backend.delete("blobs/ab/one")
    backend.delete("blobs/ab/one")  # idempotent
    assert not backend.exists("blobs/ab/one")
    with pytest.raises(ObjectMissing):
        read_all(backend, "blobs/ab/one")
    assert list(backend.iter_objects()) == []


def test_an_empty_object(backend: BlobBackend) -> None:
    assert backend.put("empty", []) == 0
    assert read_all(backend, "empty") == b""


def test_a_failed_write_leaves_nothing(backend: BlobBackend) -> None:
    with pytest.raises(Boom):
        backend.put("blobs/xx/partial", failing_stream(3, 1000))
    assert not backend.exists("blobs/xx/partial")
    assert list(backend.iter_objects()) == []


def test_a_failed_write_never_replaces_an_existing_object(backend: BlobBackend) -> None:
    backend.put("key", [b"original"])
    with pytest.raises(Boom):
        backend.put("key", failing_stream(2, 10))
    assert read_all(backend, "key") == b"original"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", ".tmp-x", "a/./b"])
def test_unsafe_keys_are_refused(backend: BlobBackend, key: str) -> None:
    with pytest.raises(ValueError, match="key"):
        backend.put(key, [b"x"])


def test_local_writes_leave_no_temporary_files(local_backend: LocalDirectoryBackend) -> None:
    local_backend.put("a/b", [b"x"])
    with pytest.raises(Boom):
        local_backend.put("a/c", failing_stream(1, 10))
    assert list(local_backend.iter_partial_files()) == []
    assert sorted(p.name for p in (local_backend.root / "a").iterdir()) == ["b"]
    assert oct((local_backend.root / "a" / "b").stat().st_mode & 0o777) == "0o600"


def test_local_listing_skips_temporary_files(local_backend: LocalDirectoryBackend) -> None:
    local_backend.put("a/b", [b"x"])
    (local_backend.root / "a" / ".tmp-crashed").write_bytes(b"half")
    assert [o.key for o in local_backend.iter_objects()] == ["a/b"]
    assert [p.name for p in local_backend.iter_partial_files()] == [".tmp-crashed"]


def test_local_listing_of_a_missing_root(tmp_path: Path) -> None:
    backend = LocalDirectoryBackend(tmp_path / "never-created")
    assert list(backend.iter_objects()) == []
    assert list(backend.iter_partial_files()) == []


def test_s3_multipart_upload_of_a_large_stream(s3_backend: S3Backend, s3_client: S3Client) -> None:
    data = os.urandom(12 << 20)  # three 5 MiB parts, the last one short
    pieces = (data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20))
    assert s3_backend.put("big", pieces) == len(data)
    assert read_all(s3_backend, "big") == data
    head = s3_client.head_object(Bucket=s3_backend.bucket, Key="vault/big")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts


def test_s3_failed_multipart_upload_is_aborted(s3_backend: S3Backend) -> None:
    with pytest.raises(Boom):
        s3_backend.put("big", failing_stream(11, 1 << 20))
    assert not s3_backend.exists("big")
    assert list(s3_backend.iter_incomplete_uploads()) == []


def test_s3_keys_live_under_the_prefix(s3_backend: S3Backend, s3_client: S3Client) -> None:
    s3_backend.put("k", [b"v"])
    listed = s3_client.list_objects_v2(Bucket=s3_backend.bucket)
    assert [entry["Key"] for entry in listed["Contents"]] == ["vault/k"]


def test_s3_part_size_minimum() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        S3Backend("bucket", part_size=1 << 20, client=object())  # type: ignore[arg-type]


def test_backend_from_file_url(tmp_path: Path) -> None:
    backend = backend_from_url((tmp_path / "v").as_uri())
    assert isinstance(backend, LocalDirectoryBackend)
    assert backend.root == (tmp_path / "v").resolve()
    assert backend.url == (tmp_path / "v").resolve().as_uri()


def test_backend_from_s3_url(s3_endpoint: str, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}?endpoint={s3_endpoint}&region=us-east-1&prefix=p/"
    backend = backend_from_url(url)
    assert isinstance(backend, S3Backend)
    assert backend.prefix == "p/"
    assert backend.url == url
    backend.put("x", [b"through the URL"])
    assert read_all(backend, "x") == b"through the URL"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "unsupported"),
        ("file://otherhost/x", "local path"),
        ("s3://", "bucket"),
        ("s3://b?colour=red", "unknown s3 URL parameters"),
    ],
)
def test_bad_vault_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backend_from_url(url)


def test_s3_other_errors_propagate(s3_client: S3Client) -> None:
    from botocore.exceptions import ClientError

    backend = S3Backend("no-such-bucket-here", client=s3_client)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        read_all(backend, "k")
    with pytest.raises(ClientError, match="NoSuchBucket"):
        backend.put("k", [b"x"])
