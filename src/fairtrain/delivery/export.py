"""Writing an export, and removing withdrawn items from one.

``export_dataset`` streams the items once: each item is opened once, checked against its
declared size and SHA-256, and written to every requested format as it passes (embedded
items are read whole, since a Parquet cell must be; larger ones are teed from the source
straight into the tar member and the file copy). Everything is written into a hidden
sibling directory that is renamed into place only when complete, so an interrupted
export leaves nothing that could be served. Memory depends on the limits (two row
groups: one filling while the last is written; one embedded item), not on the size of
the dataset; only the item keys (for the manifest) grow with the number of items.

``remove_items`` applies withdrawals to an export in place: every file that holds a
removed item is checked against the manifest, rewritten without it (streaming, atomic
per file) and re-hashed; the receipts file, ``croissant.json`` and the manifest follow.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from fairtrain.audit.chain import canonical_json, format_time
from fairtrain.delivery.card import CARD_FILE, render_card
from fairtrain.delivery.croissant import CROISSANT_FILE, build_croissant, refresh_distribution
from fairtrain.delivery.items import ExportDescription, ExportItem, check_item
from fairtrain.delivery.manifest import (
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    read_manifest,
    write_manifest,
)
from fairtrain.delivery.parquet import MiB, ParquetShardWriter, rewrite_parquet_shard
from fairtrain.delivery.streams import (
    CHUNK,
    Sealed,
    Sealer,
    ShardSink,
    SinkOpener,
    VerifyingReader,
    fsync_directory,
    fsync_file,
    read_all,
    settle,
    sha256_file,
)
from fairtrain.delivery.summary import (
    RECEIPTS_FILE,
    SUMMARY_FILE,
    ConsentReceiptsWriter,
    ContentTally,
    build_training_summary,
    rewrite_receipts,
)
from fairtrain.delivery.webdataset import TarShardWriter, rewrite_tar_shard
from fairtrain.errors import Conflict, InvalidInput
from fairtrain.ids import utcnow

__all__ = [
    "MEDIA_DIR",
    "ExportFormat",
    "ExportLimits",
    "Removal",
    "export_dataset",
    "remove_items",
]

MEDIA_DIR = "media"


class ExportFormat(StrEnum):
    PARQUET = "parquet"
    WEBDATASET = "webdataset"


@dataclass(frozen=True, slots=True)
class ExportLimits:
    """Sizes that bound memory and shard sizes; the defaults are explained in
    ``fairtrain.delivery.parquet`` and ``fairtrain.delivery.webdataset``."""

    max_embedded_bytes: int = 64 * MiB
    parquet_shard_bytes: int = 512 * MiB
    row_group_bytes: int = 64 * MiB
    row_group_rows: int = 1000
    tar_shard_bytes: int = 512 * MiB
    tar_shard_items: int = 10_000


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def _partial_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial-{secrets.token_hex(6)}"


class _Export:
    def __init__(
        self,
        directory: Path,
        description: ExportDescription,
        formats: frozenset[ExportFormat],
        limits: ExportLimits,
        durable: bool = True,
        sealer: Sealer | None = None,
        sinks: SinkOpener | None = None,
    ) -> None:
        self.durable = durable
        self.sealer = sealer
        self.sinks = sinks
        self.directory = directory
        self.description = description
        self.limits = limits
        schema_metadata = {
            "fairtrain": json.dumps(
                {
                    "dataset_version_id": description.version_id,
                    "licence_id": description.licence_id,
                }
            )
        }
        self.parquet = (
            ParquetShardWriter(
                directory,
                description.modalities,
                max_shard_bytes=limits.parquet_shard_bytes,
                row_group_bytes=limits.row_group_bytes,
                row_group_rows=limits.row_group_rows,
                schema_metadata=schema_metadata,
                durable=durable,
                sealer=sealer,
                sinks=sinks,
            )
            if ExportFormat.PARQUET in formats
            else None
        )
        self.tar = (
            TarShardWriter(
                directory,
                mtime=description.created_at.timestamp(),
                max_shard_bytes=limits.tar_shard_bytes,
                max_shard_items=limits.tar_shard_items,
                durable=durable,
                sealer=sealer,
                sinks=sinks,
            )
            if ExportFormat.WEBDATASET in formats
            else None
        )
        self.receipts = ConsentReceiptsWriter(directory / RECEIPTS_FILE, description)
        self.tally = ContentTally()
        self.keys: set[str] = set()
        self.media: list[dict[str, Any]] = []
        # File copies handed to the sealer, checked against the item once it is done.
        self.copies: list[tuple[str, Sealed]] = []
        # path -> (sha256, size) of every file written, taken as each file is sealed.
        self.digests: dict[str, tuple[str, int]] = {}

    def add(self, item: ExportItem) -> None:
        check_item(item, self.description.modalities)
        if item.key in self.keys:
            raise InvalidInput(
                f"Item {item.key} appears twice; every item of a version is unique.",
                code="export_item_duplicate",
            )
        self.keys.add(item.key)
        if item.size <= self.limits.max_embedded_bytes:
            content = read_all(item)
            if self.parquet is not None:
                self.parquet.add(item, content, None)
            if self.tar is not None:
                self.tar.add(item, content)
        else:
            self._add_large(item)
        self.receipts.add(item)
        self.tally.add(item)

    def _add_large(self, item: ExportItem) -> None:
        """Stream an item too large for a Parquet cell: into the tar member and, when
        Parquet is written, into a plain copy under media/ that its row points to."""
        relative = f"{MEDIA_DIR}/{item.key}.{item.extension}"
        stream: ShardSink | None = None
        with contextlib.ExitStack() as stack:
            sinks: list[IO[bytes] | ShardSink] = []
            if self.parquet is not None and self.sinks is not None:
                stream = self.sinks(relative)
                sinks.append(stream)
            elif self.parquet is not None:
                (self.directory / MEDIA_DIR).mkdir(exist_ok=True)
                sinks.append(stack.enter_context((self.directory / relative).open("wb")))
            reader = VerifyingReader(item, sinks)
            stack.callback(reader.close)
            try:
                if self.tar is not None:
                    self.tar.add(item, reader)
                else:
                    while reader.read(CHUNK):
                        pass
                    reader.finish()
            except BaseException:
                if stream is not None:
                    stream.abort()
                raise
        if self.parquet is not None:
            self.parquet.add(item, None, relative)
            self.media.append({"path": relative, "format": "file", "keys": [item.key]})
            # The copy holds exactly the item's verified bytes: its digest is the item's.
            self.digests[relative] = (item.sha256, item.size)
            if stream is not None:
                self.copies.append((relative, stream.seal()))
            elif self.sealer is not None:
                self.copies.append((relative, self.sealer(self.directory / relative)))

    def abort(self) -> None:
        for writer in (self.parquet, self.tar, self.receipts):
            if writer is not None:
                writer.abort()

    def finish(self) -> dict[str, Any]:
        d = self.description
        count = len(self.keys)
        if count != d.item_count:
            raise InvalidInput(
                f"The description says {d.item_count} items but {count} were given.",
                code="export_item_count",
            )
        for relative, claim in self.copies:
            if settle(claim) != self.digests[relative]:
                raise Conflict(
                    f"{relative} changed on the scratch disk before it was stored.",
                    code="export_file_changed",
                )
        shards: list[dict[str, Any]] = []
        for kind, writer in (("parquet", self.parquet), ("webdataset", self.tar)):
            if writer is None:
                continue
            for record in writer.close():
                shards.append({"path": record.path, "format": kind, "keys": list(record.keys)})
                self.digests[record.path] = (record.sha256, record.size)
        shards += self.media
        self.receipts.close()
        (self.directory / CARD_FILE).write_text(
            render_card(d, item_count=count, with_parquet=self.parquet is not None),
            encoding="utf-8",
        )
        summary = build_training_summary(d, self.tally)
        (self.directory / SUMMARY_FILE).write_bytes(_json_bytes(summary))
        for name in (RECEIPTS_FILE, CARD_FILE, SUMMARY_FILE):
            self.digests[name] = sha256_file(self.directory / name)
        croissant = build_croissant(d, self._files(), item_count=count)
        (self.directory / CROISSANT_FILE).write_bytes(_json_bytes(croissant))
        self.digests[CROISSANT_FILE] = sha256_file(self.directory / CROISSANT_FILE)
        files = self._files()
        created = format_time(d.created_at)
        manifest = {
            "format": MANIFEST_FORMAT,
            "dataset_id": d.dataset_id,
            "dataset_version_id": d.version_id,
            "version_number": d.version_number,
            "licence_id": d.licence_id,
            "created_at": created,
            "updated_at": created,
            "item_count": count,
            "files": files,
            "shards": sorted(shards, key=lambda shard: str(shard["path"])),
            "withdrawn": [],
        }
        write_manifest(self.directory, manifest)
        if not self.durable:
            return manifest
        # Durable before it is renamed into place: the shards were already handed to the
        # kernel for write-out as each was sealed, so this mostly waits for what is left.
        # Files given to sinks are not here: their sinks made them durable.
        local = [entry for entry in files if (self.directory / entry["path"]).exists()]
        for entry in local:
            fsync_file(self.directory / entry["path"])
        fsync_file(self.directory / MANIFEST_FILE)
        for directory in {(self.directory / entry["path"]).parent for entry in local}:
            fsync_directory(directory)
        return manifest

    def _files(self) -> list[dict[str, Any]]:
        return [
            {"path": path, "sha256": digest, "size": size}
            for path, (digest, size) in sorted(self.digests.items())
        ]


def export_dataset(
    items: Iterable[ExportItem],
    description: ExportDescription,
    out_dir: Path,
    *,
    formats: Collection[ExportFormat] = (ExportFormat.PARQUET, ExportFormat.WEBDATASET),
    limits: ExportLimits | None = None,
    durable: bool = True,
    sealer: Sealer | None = None,
    sinks: SinkOpener | None = None,
) -> dict[str, Any]:
    """Write the export of ``items`` to ``out_dir`` (which must not exist yet) and
    return its manifest. On any error nothing is left at ``out_dir``.

    ``durable=False`` skips the fsyncs (and the early write-out of each shard) for an
    export written to scratch space and copied elsewhere at once (the delivery service
    stores it in the vault, which fsyncs): still atomic for readers, not crash-durable,
    and its files stay in the page cache for the copy.

    ``sealer`` is given each shard and file copy as soon as it is complete and returns
    its SHA-256 and size for the manifest; it may take the file's bytes away (the
    delivery service stores it in the vault and truncates it), so the files the manifest
    lists are then not all in ``out_dir``. Without one, each file is hashed here.

    ``sinks`` goes further: shards and file copies are written straight to the sink it
    opens for each (the delivery service's streams them into the vault) and never reach
    ``out_dir``; only the small files (card, receipts, summary, Croissant, manifest) do."""
    chosen = frozenset(ExportFormat(f) for f in formats)
    if not chosen:
        raise InvalidInput("Choose at least one export format.", code="export_formats")
    if out_dir.exists():
        raise Conflict(
            f"{out_dir} already exists; an export is never written over another one.",
            code="export_exists",
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_dir(out_dir)
    partial.mkdir()
    export: _Export | None = None
    try:
        export = _Export(
            partial, description, chosen, limits or ExportLimits(), durable, sealer, sinks
        )
        for item in items:
            export.add(item)
        manifest = export.finish()
        if durable:
            fsync_directory(partial)
        os.rename(partial, out_dir)
        if durable:
            fsync_directory(out_dir.parent)
    except BaseException:
        if export is not None:
            export.abort()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


@dataclass(frozen=True, slots=True)
class Removal:
    """What ``remove_items`` did: the new manifest, the keys removed and the keys that
    were not in the export (nothing to do for those)."""

    manifest: dict[str, Any]
    removed: tuple[str, ...]
    absent: tuple[str, ...]


def _check_unchanged(export_dir: Path, entry: dict[str, Any]) -> None:
    digest, size = sha256_file(export_dir / entry["path"])
    if digest != entry["sha256"] or size != entry["size"]:
        raise Conflict(
            f"{entry['path']} differs from the manifest; verify the export (or download "
            "it again) before applying withdrawals.",
            code="export_file_modified",
        )


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def remove_items(export_dir: Path, keys: Iterable[str]) -> Removal:
    """Remove the items ``keys`` from the export at ``export_dir``: their Parquet rows,
    tar members and file copies, receipts entries; then refresh ``croissant.json`` and
    the manifest. Keys not in the export are reported as absent and change nothing."""
    manifest = read_manifest(export_dir)
    wanted = frozenset(keys)
    files = {entry["path"]: entry for entry in manifest["files"]}
    held = {key for shard in manifest["shards"] for key in shard["keys"]}
    doomed = wanted & held
    absent = tuple(sorted(wanted - held))
    if not doomed:
        return Removal(manifest=manifest, removed=(), absent=absent)
    affected = [s for s in manifest["shards"] if doomed & set(s["keys"])]
    for shard in affected:
        _check_unchanged(export_dir, files[shard["path"]])
    _check_unchanged(export_dir, files[RECEIPTS_FILE])

    shards = []
    for shard in manifest["shards"]:
        if shard not in affected:
            shards.append(shard)
            continue
        path = export_dir / shard["path"]
        if shard["format"] == "parquet":
            rewrite_parquet_shard(path, doomed)
        elif shard["format"] == "webdataset":
            rewrite_tar_shard(path, doomed)
        else:
            path.unlink()
            del files[shard["path"]]
            continue
        digest, size = sha256_file(path)
        files[shard["path"]] = {"path": shard["path"], "sha256": digest, "size": size}
        shards.append({**shard, "keys": [k for k in shard["keys"] if k not in doomed]})
    rewrite_receipts(export_dir / RECEIPTS_FILE, doomed)
    digest, size = sha256_file(export_dir / RECEIPTS_FILE)
    files[RECEIPTS_FILE] = {"path": RECEIPTS_FILE, "sha256": digest, "size": size}

    croissant_path = export_dir / CROISSANT_FILE
    entries = [files[path] for path in sorted(files) if path != CROISSANT_FILE]
    croissant = refresh_distribution(json.loads(croissant_path.read_bytes()), entries)
    _write_atomically(croissant_path, _json_bytes(croissant))
    digest, size = sha256_file(croissant_path)
    files[CROISSANT_FILE] = {"path": CROISSANT_FILE, "sha256": digest, "size": size}

    now = format_time(utcnow())
    removed = tuple(sorted(doomed))
    remaining = {key for shard in shards for key in shard["keys"]}
    updated = {
        **manifest,
        "updated_at": now,
        "item_count": len(remaining),
        "files": [files[path] for path in sorted(files)],
        "shards": shards,
        "withdrawn": [
            *manifest.get("withdrawn", []),
            *({"key": key, "removed_at": now} for key in removed),
        ],
    }
    _write_atomically(export_dir / MANIFEST_FILE, canonical_json(updated))
    fsync_directory(export_dir)
    return Removal(manifest=updated, removed=removed, absent=absent)
