"""WebDataset tar shards: ``webdataset/shard-000000.tar`` …

Each item is two adjacent members, so WebDataset groups them into one sample by the part
of the name before the first dot (the key):

- ``{key}.{extension}``: the bytes as delivered (``ast_….flac``, ``ast_….txt``). An item
  whose extension is ``json`` (a Telegram chat export) is named ``{key}.{modality}.json``
  so it cannot be mistaken for the metadata member;
- ``{key}.json``: the item's description and delivered metadata, RFC 8785 JSON.

Members are streamed from the item's source into the tar (``tarfile`` with file objects,
1 MiB copies), so an item is never in memory whole. A shard is closed before it would pass
``max_shard_bytes`` (512 MiB) or ``max_shard_items`` (10,000 items); an item larger than
the cap gets a shard of its own. Members carry mode 0444, uid/gid 0 and the export's
creation time, so the same items give the same bytes.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from fairtrain.audit.chain import canonical_json
from fairtrain.delivery.items import ExportItem
from fairtrain.delivery.parquet import MiB, ShardRecord
from fairtrain.delivery.streams import (
    CHUNK,
    Sealed,
    Sealer,
    ShardSink,
    SinkOpener,
    VerifyingReader,
    fsync_file,
    sealed,
    settle,
)
from fairtrain.errors import InvalidInput

__all__ = [
    "WEBDATASET_DIR",
    "TarShardWriter",
    "item_record",
    "member_key",
    "member_name",
    "rewrite_tar_shard",
]

WEBDATASET_DIR = "webdataset"
_BLOCK = tarfile.BLOCKSIZE


def member_name(item: ExportItem) -> str:
    suffix = item.extension if item.extension != "json" else f"{item.modality}.json"
    return f"{item.key}.{suffix}"


def member_key(name: str) -> str:
    """The sample key WebDataset derives from a member name."""
    return os.path.basename(name).split(".", 1)[0]


def item_record(item: ExportItem) -> dict[str, Any]:
    """What the ``{key}.json`` member says about an item."""
    return {
        "key": item.key,
        "modality": str(item.modality),
        "media_type": item.media_type,
        "extension": item.extension,
        "size": item.size,
        "sha256": item.sha256,
        "metadata": dict(item.metadata),
    }


def _padded(size: int) -> int:
    return _BLOCK + -(-size // _BLOCK) * _BLOCK


class TarShardWriter:
    def __init__(
        self,
        export_dir: Path,
        *,
        mtime: float,
        max_shard_bytes: int = 512 * MiB,
        max_shard_items: int = 10_000,
        durable: bool = True,
        sealer: Sealer | None = None,
        sinks: SinkOpener | None = None,
    ) -> None:
        self._durable = durable
        self._sealer = sealer
        self._sinks = sinks
        self._dir = export_dir / WEBDATASET_DIR
        if sinks is None:
            self._dir.mkdir(parents=True, exist_ok=True)
        self._mtime = mtime
        self._max_shard_bytes = max_shard_bytes
        self._max_shard_items = max_shard_items
        self._sink: IO[bytes] | ShardSink | None = None
        self._tar: tarfile.TarFile | None = None
        self._keys: list[str] = []
        self._records: list[tuple[str, tuple[str, ...], Sealed]] = []

    def add(self, item: ExportItem, source: bytes | VerifyingReader) -> None:
        """Append an item: ``source`` is its checked bytes, or a reader that streams (and
        checks) them; the reader is finished here."""
        record = canonical_json(item_record(item))
        weight = _padded(item.size) + _padded(len(record))
        if self._keys and (
            len(self._keys) >= self._max_shard_items
            or self._tar_size() + weight > self._max_shard_bytes
        ):
            self._close_shard()
        tar = self._open_shard()
        body: IO[bytes] | VerifyingReader = (
            io.BytesIO(source) if isinstance(source, bytes) else source
        )
        try:
            tar.addfile(self._info(member_name(item), item.size), body)
        except OSError as error:
            # tarfile reports a source that ends early as a bare OSError; a source's own
            # failure (a subclass: connection reset…) is re-raised as it is.
            short = isinstance(source, VerifyingReader) and source.count < item.size
            if type(error) is OSError and short:
                raise InvalidInput(
                    f"Item {item.key} ended after {source.count} of its {item.size} "
                    "bytes; nothing was exported.",
                    code="export_item_mismatch",
                ) from None
            raise
        if isinstance(source, VerifyingReader):
            source.finish()
        tar.addfile(self._info(f"{item.key}.json", len(record)), io.BytesIO(record))
        self._keys.append(item.key)

    def close(self) -> list[ShardRecord]:
        if self._keys or not self._records:
            self._open_shard()
            self._close_shard()
        return [ShardRecord(path, keys, *settle(claim)) for path, keys, claim in self._records]

    def abort(self) -> None:
        """Close what is open after a failure (the caller removes the files)."""
        if self._sink is not None:
            if self._sinks is not None:
                cast(ShardSink, self._sink).abort()
            else:
                self._sink.close()
        self._tar = None
        self._sink = None

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o444
        info.mtime = self._mtime
        info.type = tarfile.REGTYPE
        return info

    def _tar_size(self) -> int:
        return self._sink.tell() if self._sink is not None else 0

    def _open_shard(self) -> tarfile.TarFile:
        if self._tar is None:
            name = f"shard-{len(self._records):06d}.tar"
            self._sink = (
                self._sinks(f"{WEBDATASET_DIR}/{name}")
                if self._sinks is not None
                else (self._dir / name).open("wb")
            )
            self._tar = tarfile.TarFile(
                # A sink has all of a file tarfile uses for writing: write and tell.
                fileobj=cast(IO[bytes], self._sink),
                mode="w",
                format=tarfile.PAX_FORMAT,
                copybufsize=CHUNK,
            )
        return self._tar

    def _close_shard(self) -> None:
        assert self._tar is not None and self._sink is not None
        self._tar.close()
        if self._sinks is not None:
            name = f"shard-{len(self._records):06d}.tar"
            claim = cast(ShardSink, self._sink).seal()
        else:
            handle = cast(IO[bytes], self._sink)
            handle.close()
            path = Path(handle.name)
            name = path.name
            claim = sealed(path, self._sealer, durable=self._durable)
        self._records.append((f"{WEBDATASET_DIR}/{name}", tuple(self._keys), claim))
        self._tar = None
        self._sink = None
        self._keys = []


def _members(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    for member in tar:
        yield member, tar.extractfile(member)


def rewrite_tar_shard(path: Path, keys: frozenset[str]) -> tuple[str, ...]:
    """Rewrite one shard without the members of ``keys``, streaming member by member
    into a sibling file that replaces the shard once complete. Returns the keys removed
    (empty, and the file untouched, when none were in it)."""
    with tarfile.open(path, mode="r:") as tar:
        present = {member_key(name) for name in tar.getnames()}
    if not present & keys:
        return ()
    removed: list[str] = []
    partial = path.with_name(path.name + ".partial")
    with (
        tarfile.open(path, mode="r|") as source,
        partial.open("wb") as sink,
        tarfile.TarFile(
            fileobj=sink, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
        ) as target,
    ):
        for member, body in _members(source):
            key = member_key(member.name)
            if key in keys:
                if not removed or removed[-1] != key:
                    removed.append(key)
                continue
            target.addfile(member, body)
    fsync_file(partial)
    os.replace(partial, path)
    return tuple(removed)
