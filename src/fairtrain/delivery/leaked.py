"""Leaked files as ``fairtrain trace`` reads them: loose files, and whole shards opened up.

A leak is as likely to be a shard as a sample: a licensee re-uploads ``webdataset/…tar``
or ``data/train-….parquet`` somewhere public. :func:`leaked_items` yields the samples a
list of paths holds, **in the order the leak holds them** (a tar's members, a Parquet
file's rows), each as a scratch file the detectors can read, deleted as soon as the
caller moves on, so a leak of any size is traced in bounded space and memory.

The leak is untrusted input: member names are never used as paths (only their suffix is
kept, so the detectors see the same kind of file), only regular members are read, a
member is capped at ``MAX_MEMBER_BYTES``, a leak at ``MAX_SAMPLES`` samples, and a shard
that cannot be read is reported as one unusable item rather than aborting the trace.
Each sample's ``key`` is the sample key the shard names it by (WebDataset's name before
the first dot, Parquet's ``key`` column): the platform's own keys are asset ids, which
lets the tracer place a sample in the leak's order even when its bytes were altered.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from fairtrain.delivery.parquet import MEDIA_COLUMNS
from fairtrain.delivery.webdataset import member_key

__all__ = ["MAX_MEMBER_BYTES", "MAX_SAMPLES", "LeakedItem", "leaked_items", "shard_kind"]

MAX_MEMBER_BYTES = 4 << 30  # one sample: the largest delivered item is far smaller
MAX_SAMPLES = 1_000_000
_PARQUET_MAGIC = b"PAR1"
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")
_COPY_CHUNK = 1 << 20
_MEDIA_COLUMNS = tuple(column for column, _ in MEDIA_COLUMNS.values())


@dataclass(frozen=True, slots=True)
class LeakedItem:
    """One sample of a leak: where it came from, its bytes on disk, the key it bears."""

    label: str  # the file, or "shard.tar:member" / "shard.parquet:row N"
    path: Path | None  # None when the sample could not be read (see ``error``)
    key: str | None = None
    error: str | None = None


def shard_kind(path: Path) -> str | None:
    """ "webdataset" or "parquet" when the file is a shard of one (from its bytes)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(0, 2)
            if handle.tell() >= 12:
                handle.seek(-4, 2)
                tail = handle.read(4)
            else:
                tail = b""
    except OSError:
        return None
    if head == _PARQUET_MAGIC and tail == _PARQUET_MAGIC:
        return "parquet"
    try:
        return "webdataset" if tarfile.is_tarfile(path) else None
    except OSError:
        return None


def leaked_items(paths: Sequence[Path]) -> Iterator[LeakedItem]:
    """Every sample of ``paths`` in order; a shard's scratch copy lives until the next."""
    count = 0
    with tempfile.TemporaryDirectory(prefix="fairtrain-leak-") as scratch:
        for path in paths:
            kind = shard_kind(path)
            samples: Iterator[LeakedItem]
            if kind == "webdataset":
                samples = _tar_samples(path, Path(scratch))
            elif kind == "parquet":
                samples = _parquet_samples(path, Path(scratch))
            else:
                samples = iter([LeakedItem(str(path), path)])
            for item in samples:
                count += 1
                if count > MAX_SAMPLES:
                    yield LeakedItem(
                        str(path), None, error=f"the leak holds more than {MAX_SAMPLES:,} samples"
                    )
                    return
                yield item


def _scratch_file(scratch: Path, name: str) -> Path:
    suffix = match.group(0).lower() if (match := _SUFFIX.search(name)) else ""
    target = scratch / f"sample{suffix}"
    target.unlink(missing_ok=True)
    return target


def _copy_member(source: IO[bytes], target: Path) -> None:
    with target.open("wb") as sink:
        shutil.copyfileobj(source, sink, _COPY_CHUNK)


def _tar_samples(path: Path, scratch: Path) -> Iterator[LeakedItem]:
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                label = f"{path}:{member.name}"
                if not member.isfile():
                    continue
                key = member_key(member.name)
                # ``{key}.json`` is the item's description the exporter writes beside
                # it, not a sample (a chat is ``{key}.chat.json``).
                if member.name.rsplit("/", 1)[-1] == f"{key}.json":
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    yield LeakedItem(label, None, key, "the member is too large to trace")
                    continue
                body = tar.extractfile(member)
                if body is None:
                    continue
                target = _scratch_file(scratch, member.name)
                _copy_member(body, target)
                yield LeakedItem(label, target, key)
    except (tarfile.TarError, OSError, EOFError) as error:
        yield LeakedItem(str(path), None, error=f"the shard cannot be read: {error}")


def _row_sample(batch: pa.RecordBatch, row: int) -> tuple[bytes | None, str]:
    """The row's sample bytes and a file name suffix for them."""
    names = batch.schema.names
    extension = ""
    if "extension" in names:
        value = batch.column("extension")[row].as_py()
        extension = f".{value}" if isinstance(value, str) else ""
    for column in _MEDIA_COLUMNS:
        if column in names:
            cell = batch.column(column)[row].as_py()
            if isinstance(cell, dict) and isinstance(cell.get("bytes"), bytes):
                return cell["bytes"], extension
    if "text" in names:
        text = batch.column("text")[row].as_py()
        if isinstance(text, str):
            return text.encode("utf-8"), ".txt"
    return None, extension


def _parquet_samples(path: Path, scratch: Path) -> Iterator[LeakedItem]:
    try:
        parquet = pq.ParquetFile(path)
        wanted = [
            c
            for c in ("key", "extension", "text", *_MEDIA_COLUMNS)
            if c in parquet.schema_arrow.names
        ]
        index = 0
        # A few rows at a time: a row can hold a whole recording or video.
        for batch in parquet.iter_batches(batch_size=8, columns=wanted):
            keys = batch.column("key").to_pylist() if "key" in wanted else [None] * batch.num_rows
            for row in range(batch.num_rows):
                label = f"{path}:row {index}"
                index += 1
                data, suffix = _row_sample(batch, row)
                key = keys[row] if isinstance(keys[row], str) else None
                if data is None:
                    yield LeakedItem(label, None, key, "the row holds no embedded sample")
                    continue
                target = _scratch_file(scratch, f"sample{suffix}")
                target.write_bytes(data)
                yield LeakedItem(label, target, key)
    except (pa.ArrowException, OSError) as error:
        yield LeakedItem(str(path), None, error=f"the shard cannot be read: {error}")
