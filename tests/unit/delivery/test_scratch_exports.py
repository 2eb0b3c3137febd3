"""An export written to scratch space (``durable=False``, what the delivery service
does before storing it in the vault) is the same export, byte for byte."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

from fairtrain.delivery import (
    ExportDescription,
    ExportFormat,
    ExportItem,
    ExportLimits,
    export_dataset,
    verify_export,
)
from fairtrain.errors import InvalidInput


def test_a_scratch_export_has_the_same_files_and_manifest(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    durable = export_dataset(items, description, tmp_path / "durable")
    scratch = export_dataset(items, description, tmp_path / "scratch", durable=False)
    assert scratch == durable
    assert verify_export(tmp_path / "scratch").ok
    for entry in durable["files"]:
        assert (tmp_path / "scratch" / entry["path"]).read_bytes() == (
            tmp_path / "durable" / entry["path"]
        ).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["durable", "scratch"]


def test_a_sealer_takes_each_shard_and_file_copy_as_it_is_finished(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    """What the delivery service does: each finished shard and file copy is handed over
    (there, stored in the vault) and its bytes taken off the scratch disk; the manifest
    records the digests the sealer returned, and they are the files' own."""
    limits = ExportLimits(max_embedded_bytes=40_000, parquet_shard_bytes=1, tar_shard_items=1)
    taken: dict[str, bytes] = {}

    def sealer(path: Path) -> tuple[str, int]:
        data = path.read_bytes()
        taken[path.name.removesuffix(".partial")] = data
        path.write_bytes(b"")  # the bytes are elsewhere now, as after a vault store
        return hashlib.sha256(data).hexdigest(), len(data)

    plain = export_dataset(items, description, tmp_path / "plain", limits=limits, durable=False)
    sealed = export_dataset(
        items, description, tmp_path / "sealed", limits=limits, durable=False, sealer=sealer
    )
    assert sealed["files"] == plain["files"] and sealed["shards"] == plain["shards"]
    handed = {Path(s["path"]).name for s in plain["shards"] if not s["path"].endswith(".parquet")}
    assert handed <= set(taken) and any(s["format"] == "file" for s in plain["shards"])
    assert len(taken) == len(plain["shards"])
    by_path = {entry["path"]: entry for entry in plain["files"]}
    for shard in plain["shards"]:
        if shard["path"].endswith(".parquet"):  # renamed -of-N once the count is known
            continue
        data = taken[Path(shard["path"]).name]
        assert hashlib.sha256(data).hexdigest() == by_path[shard["path"]]["sha256"]
        assert data == (tmp_path / "plain" / shard["path"]).read_bytes()


def test_a_source_checked_item_is_counted_not_hashed_again(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    """A source that checks its own bytes (the vault) is trusted for the digest, but a
    stream of the wrong length is still refused by the exporter's count."""
    first = items[0]
    with first.open() as source:
        data = source.read()
    checked = replace(first, source_checked=True, open=lambda: io.BytesIO(data))
    manifest = export_dataset([checked, *items[1:]], description, tmp_path / "ok")
    assert verify_export(tmp_path / "ok").ok and manifest["item_count"] == len(items)
    short = replace(checked, open=lambda: io.BytesIO(data[:-1]))
    with pytest.raises(InvalidInput) as refused:
        export_dataset([short, *items[1:]], description, tmp_path / "short")
    assert refused.value.code == "export_item_mismatch"


class _MemorySink:
    """A sink as the delivery service's vault sink behaves: bytes kept elsewhere, the
    digest given when sealed, nothing kept when aborted."""

    def __init__(self, kept: dict[str, bytes], aborted: list[str], path: str) -> None:
        self._kept, self._aborted, self._path = kept, aborted, path
        self._data = bytearray()
        self.closed = False  # what pyarrow asks of a file it writes to

    def write(self, data: bytes, /) -> int:
        self._data += data
        return len(data)

    def tell(self) -> int:
        return len(self._data)

    def close(self) -> None:
        pass

    def seal(self) -> Callable[[], tuple[str, int]]:
        self._kept[self._path] = bytes(self._data)
        return lambda: (hashlib.sha256(self._data).hexdigest(), len(self._data))

    def abort(self) -> None:
        self._aborted.append(self._path)


def test_with_sinks_shards_and_copies_never_reach_the_export_directory(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    limits = ExportLimits(max_embedded_bytes=40_000, parquet_shard_bytes=1, tar_shard_items=1)
    kept: dict[str, bytes] = {}
    aborted: list[str] = []

    def sinks(path: str) -> _MemorySink:
        return _MemorySink(kept, aborted, path)

    plain = export_dataset(items, description, tmp_path / "plain", limits=limits, durable=False)
    streamed = export_dataset(items, description, tmp_path / "streamed", limits=limits, sinks=sinks)
    assert streamed["files"] == plain["files"] and streamed["shards"] == plain["shards"]
    assert aborted == [] and any(s["format"] == "file" for s in plain["shards"])
    on_disk = {p.relative_to(tmp_path / "streamed").as_posix()
               for p in (tmp_path / "streamed").rglob("*") if p.is_file()}  # fmt: skip
    assert not on_disk & {s["path"] for s in plain["shards"]}
    # What each sink kept is the plain export's file, byte for byte (Parquet shards get
    # their -of-N name once the count is known).
    assert len(kept) == len(plain["shards"])
    plain_bytes = sorted((tmp_path / "plain" / s["path"]).read_bytes() for s in plain["shards"])
    assert sorted(kept.values()) == plain_bytes


def test_a_failed_export_aborts_the_sink_it_was_writing(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    kept: dict[str, bytes] = {}
    aborted: list[str] = []
    first = items[0]
    with first.open() as source:
        data = source.read()
    bad = replace(first, key="zz-last", open=lambda: io.BytesIO(data[:-1]))
    with pytest.raises(InvalidInput):
        export_dataset(
            [*items, bad],
            replace(description, item_count=len(items) + 1),
            tmp_path / "failed",
            sinks=lambda path: _MemorySink(kept, aborted, path),
        )
    assert aborted and not (tmp_path / "failed").exists()


class _Threads(_MemorySink):
    """A sink that notes which thread writes to it."""

    names: ClassVar[set[str]] = set()

    def write(self, data: bytes, /) -> int:
        self.names.add(threading.current_thread().name)
        return super().write(data)


def test_row_groups_are_written_by_a_thread_of_their_own(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    """The next row group fills while the last one is encoded and written elsewhere; the
    footer (written when the shard closes) is the caller's. The shard is the same."""
    kept: dict[str, bytes] = {}
    limits = ExportLimits(row_group_rows=1)
    _Threads.names = set()
    export_dataset(
        items,
        description,
        tmp_path / "threaded",
        formats=[ExportFormat.PARQUET],
        limits=limits,
        sinks=lambda path: _Threads(kept, [], path),
    )
    assert any(name.startswith("parquet-writer") for name in _Threads.names)
    assert threading.current_thread().name in _Threads.names
    plain = export_dataset(
        items, description, tmp_path / "plain", formats=[ExportFormat.PARQUET], limits=limits
    )
    shards = [s["path"] for s in plain["shards"] if s["format"] == "parquet"]
    assert sorted(kept.values()) == sorted((tmp_path / "plain" / p).read_bytes() for p in shards)


class _FullDisk(_MemorySink):
    """A sink whose store fails part-way, as a full disk would."""

    def write(self, data: bytes, /) -> int:
        if self.tell() + len(data) > 30_000:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_a_row_group_that_fails_to_be_written_fails_the_export(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    """Row groups are written by a thread of their own: its failure is not lost, it
    fails the export (at the next row group or the shard's end) and nothing is left."""
    aborted: list[str] = []
    with pytest.raises(OSError, match="No space"):
        export_dataset(
            items,
            description,
            tmp_path / "full",
            formats=[ExportFormat.PARQUET],
            limits=ExportLimits(row_group_rows=1),
            sinks=lambda path: _FullDisk({}, aborted, path),
        )
    assert aborted and not (tmp_path / "full").exists()
    assert [p.name for p in tmp_path.iterdir()] == []
