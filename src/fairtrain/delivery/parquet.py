"""Parquet shards with the media embedded, the way Hugging Face ``datasets`` stores them.

Layout: ``data/train-00000-of-00003.parquet`` … One row per item. Columns (only the media
and text columns of the dataset's modalities are present; every other column always is):

==========================  ============================  =====================================
column                      type                          holds
==========================  ============================  =====================================
``key``                     string                        the item's stable id (``ast_…``)
``modality``                string                        audio, image, video, chat, text,
                                                          document
``media_type``              string                        ``audio/flac``…
``extension``               string                        ``flac``…
``size``                    int64                         bytes as delivered
``sha256``                  string                        SHA-256 (hex) of those bytes
``audio`` / ``image`` /     struct<bytes: binary,         the media, as ``datasets``' Audio,
``video`` / ``document``    path: string>                 Image, Video and Pdf features store
                                                          it; null on rows of other modalities
``text``                    string                        UTF-8 content of text and chat items
``media_file``              string                        relative path of the item's file
                                                          copy when it was too large to embed
typed metadata              see ``TYPED_METADATA``        null when the item has no such value
``metadata``                string                        all delivered metadata, RFC 8785 JSON
==========================  ============================  =====================================

Why the sizes: a row group holds at most ``row_group_bytes`` (64 MiB) of media (or one
item larger than that) and at most ``row_group_rows`` (1,000) rows. Readers (``datasets``
streaming, ``pyarrow.dataset`` scans, the Hub's viewer) hold one row group at a time, so
this bounds their memory as well as ours (two: one fills while the last is written),
while keeping per-row-group overhead (footer entries, page headers) negligible next to
media bytes. Shards are capped at ``max_shard_bytes``
(512 MiB, the size ``datasets`` itself uses when it shards a push) so downloads resume and
parallel loaders get several files.

An item larger than ``max_embedded_bytes`` (64 MiB: a minute of HD video) is not put in a
cell, since a Parquet value must be in memory whole: its row keeps every column but the
media struct's ``bytes`` is null, its ``path`` and ``media_file`` name the plain copy under
``media/`` in the same export. Media columns are stored uncompressed (the media are
compressed already) and without statistics (a min/max of a video in the footer would be
absurd); every other column is zstd-compressed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fairtrain.audit.chain import canonical_json
from fairtrain.delivery.items import JSON, ExportItem, Modality
from fairtrain.delivery.streams import (
    Sealed,
    Sealer,
    ShardSink,
    SinkOpener,
    fsync_file,
    sealed,
    settle,
)
from fairtrain.errors import InvalidInput

__all__ = [
    "MEDIA_COLUMNS",
    "PARQUET_DIR",
    "TYPED_METADATA",
    "ParquetShardWriter",
    "ShardRecord",
    "hf_features",
    "media_column",
    "parquet_schema",
    "rewrite_parquet_shard",
]

PARQUET_DIR = "data"
MiB = 1 << 20

MEDIA_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

# modality -> (column, the datasets feature that stores it)
MEDIA_COLUMNS: dict[Modality, tuple[str, str]] = {
    Modality.AUDIO: ("audio", "Audio"),
    Modality.IMAGE: ("image", "Image"),
    Modality.VIDEO: ("video", "Video"),
    Modality.DOCUMENT: ("document", "Pdf"),
}
TEXT_MODALITIES = frozenset({Modality.TEXT, Modality.CHAT})

# Delivered metadata that is stable enough to be a typed column (queryable, filterable
# without parsing JSON). Everything, these included, is also in the ``metadata`` column.
TYPED_METADATA: dict[str, pa.DataType] = {
    "duration_seconds": pa.float64(),
    "sample_rate": pa.int64(),
    "channels": pa.int64(),
    "width": pa.int64(),
    "height": pa.int64(),
    "frame_rate": pa.float64(),
    "language": pa.string(),
    "age_band": pa.string(),
    "gender": pa.string(),
    "region": pa.string(),
    "consent_receipt_sha256": pa.string(),
    "policy_version": pa.int64(),
}

_BASE_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("key", pa.string()),
    ("modality", pa.string()),
    ("media_type", pa.string()),
    ("extension", pa.string()),
    ("size", pa.int64()),
    ("sha256", pa.string()),
]


def media_column(modality: Modality) -> str | None:
    entry = MEDIA_COLUMNS.get(modality)
    return entry[0] if entry else None


def _media_columns(modalities: tuple[Modality, ...]) -> list[str]:
    return [column for modality, (column, _) in MEDIA_COLUMNS.items() if modality in modalities]


def _has_text(modalities: tuple[Modality, ...]) -> bool:
    return any(modality in TEXT_MODALITIES for modality in modalities)


def hf_features(modalities: tuple[Modality, ...]) -> dict[str, Any]:
    """The ``datasets`` Features of the table, as ``Features.to_dict()`` spells them."""

    def value(dtype: str) -> dict[str, str]:
        return {"dtype": dtype, "_type": "Value"}

    arrow_names = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64"}
    features: dict[str, Any] = {name: value(arrow_names[kind]) for name, kind in _BASE_COLUMNS}
    for modality, (column, feature) in MEDIA_COLUMNS.items():
        if modality in modalities:
            features[column] = {"_type": feature}
    if _has_text(modalities):
        features["text"] = value("string")
    features["media_file"] = value("string")
    for name, kind in TYPED_METADATA.items():
        features[name] = value(arrow_names[kind])
    features["metadata"] = value("string")
    return features


def parquet_schema(
    modalities: tuple[Modality, ...], extra_metadata: Mapping[str, str] | None = None
) -> pa.Schema:
    fields: list[tuple[str, pa.DataType]] = list(_BASE_COLUMNS)
    fields += [(column, MEDIA_STRUCT) for column in _media_columns(modalities)]
    if _has_text(modalities):
        fields.append(("text", pa.string()))
    fields.append(("media_file", pa.string()))
    fields += list(TYPED_METADATA.items())
    fields.append(("metadata", pa.string()))
    metadata = {"huggingface": json.dumps({"info": {"features": hf_features(modalities)}})}
    metadata.update(extra_metadata or {})
    return pa.schema(fields, metadata=metadata)


def _open_writer(sink: pa.NativeFile, schema: pa.Schema) -> pq.ParquetWriter:
    media = [name for name in schema.names if schema.field(name).type == MEDIA_STRUCT]
    compression: dict[str, str] = {}
    for name in schema.names:
        if name in media:
            compression[f"{name}.bytes"] = "none"
            compression[f"{name}.path"] = "zstd"
        else:
            compression[name] = "zstd"
    plain = [name for name in schema.names if name not in media and name != "text"]
    return pq.ParquetWriter(
        sink,
        schema,
        compression=compression,
        use_dictionary=["modality", "media_type", "extension", *TYPED_METADATA],
        write_statistics=plain,
    )


def _typed_value(item: ExportItem, name: str, kind: pa.DataType) -> JSON:
    value = item.metadata.get(name)
    if value is None:
        return None
    fits = (
        (kind == pa.string() and isinstance(value, str))
        or (kind == pa.int64() and isinstance(value, int) and not isinstance(value, bool))
        or (kind == pa.float64() and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not fits:
        raise InvalidInput(
            f"Item {item.key} has metadata {name}={value!r}, which is not a {kind}.",
            code="export_item_metadata",
        )
    return float(value) if kind == pa.float64() else value  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ShardRecord:
    path: str  # relative to the export directory, '/'-separated
    keys: tuple[str, ...]
    sha256: str
    size: int


class ParquetShardWriter:
    """Writes rows as they come: at most two row groups (plus one item) are in memory.

    A full row group is encoded and written by a thread of its own (pyarrow's writer
    does not hold the GIL) while the next one fills: the items' reading, decryption and
    the tar shard's writing overlap Parquet's encoding, at the cost of a second row group
    in memory. Only one row group is ever being written, so rows stay in order."""

    def __init__(
        self,
        export_dir: Path,
        modalities: tuple[Modality, ...],
        *,
        max_shard_bytes: int = 512 * MiB,
        row_group_bytes: int = 64 * MiB,
        row_group_rows: int = 1000,
        schema_metadata: Mapping[str, str] | None = None,
        durable: bool = True,
        sealer: Sealer | None = None,
        sinks: SinkOpener | None = None,
    ) -> None:
        self._durable = durable
        self._sealer = sealer
        # Given sinks, shards stream into them (pyarrow copies each page it writes into a
        # Python bytes object, one page in memory); else into files, sealed by the sealer.
        # The sinks win: a shard written to a file and read back for the vault cost 70 %
        # more kernel time than the copies (docs/benchmarks.md, delivery Round 6).
        self._sinks = sinks
        self._stream: ShardSink | None = None
        self._dir = export_dir / PARQUET_DIR
        if self._sinks is None:
            self._dir.mkdir(parents=True, exist_ok=True)
        self._modalities = modalities
        self._schema = parquet_schema(modalities, schema_metadata)
        self._max_shard_bytes = max_shard_bytes
        self._row_group_bytes = row_group_bytes
        self._row_group_rows = row_group_rows
        self._columns: dict[str, list[Any]] = {name: [] for name in self._schema.names}
        self._buffered_bytes = 0
        self._sink: pa.NativeFile | None = None
        self._sink_path: Path | None = None
        self._writer: pq.ParquetWriter | None = None
        self._shard_keys: list[str] = []
        self._finished: list[tuple[Path | None, tuple[str, ...], Sealed]] = []
        self._encoder: ThreadPoolExecutor | None = None
        self._writing: Future[None] | None = None
        self._writing_bytes = 0  # media bytes of the row group being written

    def add(self, item: ExportItem, content: bytes | None, media_file: str | None) -> None:
        """One row. ``content`` is the item's bytes, or None when it was too large to
        embed and was written to ``media_file`` instead."""
        weight = len(content) if content is not None else 0
        if self._shard_keys and self._shard_size() + self._buffered_bytes + weight > (
            self._max_shard_bytes
        ):
            self._close_shard()
        elif self._buffered_bytes and self._buffered_bytes + weight > self._row_group_bytes:
            # Flush before, not after, the row that would pass the target: a row group
            # then never holds more than the target (or one item larger than it).
            self._flush()
        row: dict[str, Any] = {
            "key": item.key,
            "modality": str(item.modality),
            "media_type": item.media_type,
            "extension": item.extension,
            "size": item.size,
            "sha256": item.sha256,
            "media_file": media_file,
            "metadata": canonical_json(dict(item.metadata)).decode("utf-8"),
        }
        for name in _media_columns(self._modalities):
            row[name] = None
        if "text" in self._columns:
            row["text"] = None
        media = media_column(item.modality)
        if media is not None:
            row[media] = {
                "bytes": content,
                "path": media_file or f"{item.key}.{item.extension}",
            }
        elif content is not None:
            try:
                row["text"] = content.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"Item {item.key} is {item.modality} but its bytes are not UTF-8 text.",
                    code="export_item_not_text",
                ) from None
        for name, kind in TYPED_METADATA.items():
            row[name] = _typed_value(item, name, kind)
        for name, values in self._columns.items():
            values.append(row[name])
        self._shard_keys.append(item.key)
        self._buffered_bytes += weight
        if len(self._columns["key"]) >= self._row_group_rows:
            self._flush()

    def close(self) -> list[ShardRecord]:
        """Finish the last shard and give every shard its final ``-of-N`` name."""
        if self._shard_keys or not self._finished:
            self._close_shard()
        self._stop_encoder()
        total = len(self._finished)
        records = []
        for index, (partial, keys, claim) in enumerate(self._finished):
            name = f"train-{index:05d}-of-{total:05d}.parquet"
            digest, size = settle(claim)
            if partial is not None:
                os.replace(partial, self._dir / name)
            records.append(ShardRecord(f"{PARQUET_DIR}/{name}", keys, digest, size))
        return records

    def abort(self) -> None:
        """Close what is open after a failure (the caller removes the files)."""
        with contextlib.suppress(Exception):
            self._written()
        self._stop_encoder()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self._stream is not None:
            self._stream.abort()
        elif self._sink is not None:
            self._sink.close()
        self._writer = None
        self._sink = None
        self._stream = None

    def _shard_size(self) -> int:
        # While a row group is being written the file's size is behind by up to that
        # row group's bytes: count them, so a shard is never let grow past the cap.
        pending = self._writing is not None and not self._writing.done()
        written = self._sink.tell() if self._sink is not None else 0
        return written + (self._writing_bytes if pending else 0)

    def _written(self) -> None:
        """Wait for the row group being written, raising what went wrong with it."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()

    def _stop_encoder(self) -> None:
        if self._encoder is not None:
            self._encoder.shutdown(wait=True)
            self._encoder = None

    def _write(self, writer: pq.ParquetWriter, table: pa.Table) -> None:
        writer.write_table(table, row_group_size=table.num_rows)
        del table
        # The allocator keeps freed row-group buffers for reuse; hand them back so the
        # process stays at about two row groups' worth of memory.
        pa.default_memory_pool().release_unused()

    def _flush(self) -> None:
        if not self._columns["key"]:
            return
        if self._writer is None:
            self._open_shard()
        assert self._writer is not None
        table = pa.Table.from_arrays(
            [self._array(field) for field in self._schema], schema=self._schema
        )
        # The rows' Python values are in Arrow buffers now: let them go before the
        # writer makes its own copy of the row group, or the three are in memory at once.
        for values in self._columns.values():
            values.clear()
        weight, self._buffered_bytes = self._buffered_bytes, 0
        self._written()  # one row group written at a time, in order
        if self._encoder is None:
            self._encoder = ThreadPoolExecutor(1, thread_name_prefix="parquet-writer")
        self._writing = self._encoder.submit(self._write, self._writer, table)
        self._writing_bytes = weight
        del table

    def _array(self, field: pa.Field) -> pa.Array:
        values = self._columns[field.name]
        if field.type != MEDIA_STRUCT:
            return pa.array(values, type=field.type)
        # Built from columns rather than row dicts: no per-row conversion, one copy.
        present = [value is not None for value in values]
        return pa.StructArray.from_arrays(
            [
                pa.array([v["bytes"] if v else None for v in values], type=pa.binary()),
                pa.array([v["path"] if v else None for v in values], type=pa.string()),
            ],
            fields=list(MEDIA_STRUCT),
            mask=pa.array([not p for p in present], type=pa.bool_()),
        )

    def _close_shard(self) -> None:
        self._flush()
        self._written()
        if self._writer is None:  # an empty dataset still gets one (empty) shard
            self._open_shard()
        assert self._writer is not None and self._sink is not None
        self._writer.close()
        self._sink.close()
        if self._stream is not None:
            claim = self._stream.seal()
            self._finished.append((None, tuple(self._shard_keys), claim))
        else:
            assert self._sink_path is not None
            claim = sealed(self._sink_path, self._sealer, durable=self._durable)
            self._finished.append((self._sink_path, tuple(self._shard_keys), claim))
        self._writer = None
        self._sink = None
        self._stream = None
        self._shard_keys = []

    def _open_shard(self) -> None:
        if self._sinks is not None:
            # Straight into its destination (the vault): never on the scratch disk.
            self._stream = self._sinks(f"{PARQUET_DIR}/train-{len(self._finished):05d}.parquet")
            self._sink = pa.PythonFile(self._stream, mode="w")
            self._writer = _open_writer(self._sink, self._schema)
            return
        # pyarrow's own file (not a Python file object): writes skip the interpreter.
        self._sink_path = self._dir / f"train-{len(self._finished):05d}.parquet.partial"
        self._sink = pa.OSFile(str(self._sink_path), "wb")
        self._writer = _open_writer(self._sink, self._schema)


def _row_groups(parquet: pq.ParquetFile) -> Iterator[pa.Table]:
    for index in range(parquet.num_row_groups):
        yield parquet.read_row_group(index)


def rewrite_parquet_shard(path: Path, keys: frozenset[str]) -> tuple[str, ...]:
    """Rewrite one shard without the rows whose key is in ``keys``, one row group at a
    time, into a sibling file that replaces the shard only once complete. Returns the
    keys removed (empty, and the file untouched, when none were in it)."""
    parquet = pq.ParquetFile(path)
    present = parquet.read(columns=["key"]).column("key").to_pylist()
    removed = tuple(key for key in present if key in keys)
    if not removed:
        parquet.close()
        return ()
    partial = path.with_name(path.name + ".partial")
    wanted = pa.array(sorted(keys), type=pa.string())
    with pa.OSFile(str(partial), "wb") as sink:
        writer = _open_writer(sink, parquet.schema_arrow)
        for table in _row_groups(parquet):
            kept = table.filter(pc.invert(pc.is_in(table.column("key"), value_set=wanted)))
            if kept.num_rows:
                writer.write_table(kept, row_group_size=kept.num_rows)
        writer.close()
    fsync_file(partial)
    parquet.close()
    os.replace(partial, path)
    return removed
