"""The export build job (``delivery.build``): from a licence to files ready to download.

For each item of the licence (the licensed version's items): the redacted, approved
version is decrypted from the vault to a private scratch file (never the original), the
licence's mark is applied with a key derived for this licence and this asset, and the
marked copy is handed to the format layer (``export_dataset``), which writes Parquet and
WebDataset shards, the manifest, the card, Croissant, the training-content summary and
the consent receipts. Every file is stored in the vault, sealed with the licence's own
data key (owner ``licence:lic_…``): WebDataset shards and file copies streamed into it as
they are written, Parquet shards from scratch as each is sealed (both from threads, while
the export goes on), the small files at the end; the export then becomes ``ready`` with
its manifest's digest.

The whole build is one transaction, like ingest's processing job: the export becomes
ready with all its file rows, or nothing is visible. A refusal (a ``DomainError``: an
item that cannot be decoded or marked, a licence that ended) rolls back to a savepoint,
which also deletes every object stored so far, and records the export as ``failed`` with
its code. A crash rolls everything back; the job is re-run by the queue's resume, and the
scratch directory of the dead attempt is removed first. Objects a dead process had
stored are orphans that ``fairtrain vault orphans --delete`` removes.

Items withdrawn, erased or rejected since the licence was granted are not delivered:
they are listed in the export's ``withheld`` with the reason.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import av
import soundfile
from PIL import Image
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import Organisation
from fairtrain.audit.keys import key_id, platform_signing_key
from fairtrain.audit.service import append_event
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.purposes import PURPOSES
from fairtrain.datasets.models import Dataset, DatasetItem, DatasetVersion
from fairtrain.delivery.export import ExportFormat, export_dataset
from fairtrain.delivery.fingerprint import licence_order
from fairtrain.delivery.items import (
    JSON,
    DeclaredPurpose,
    ExportDescription,
    ExportItem,
    KAnonymityReport,
    Modality,
    RepresentationGroup,
    RepresentationReport,
)
from fairtrain.delivery.keys import licence_key, watermark_key, watermark_secret
from fairtrain.delivery.manifest import MANIFEST_FILE, manifest_digest
from fairtrain.delivery.marking import NO_MARK, MarkedCopy, delivered_type, mark_copy
from fairtrain.delivery.models import DeliveredItem, ExportFile, ExportState, LicenceExport
from fairtrain.delivery.service import BUILD_JOB, check_active, licence_owner, mark_failed
from fairtrain.delivery.streams import ShardSink, sha256_file
from fairtrain.errors import Conflict, DomainError, InvalidInput
from fairtrain.ids import utcnow
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.jobs.registry import job_handler
from fairtrain.licensing.models import Licence, LicenceItem
from fairtrain.runtime import Runtime
from fairtrain.vault.models import VaultBlob
from fairtrain.vault.service import BlobStore

__all__ = ["build_export"]

SYSTEM = "system:delivery"
# A vault read is pulled this much at a time by the exporter's reader.
_PIECE = 1 << 20

_FILE_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".tar": "application/x-tar",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    # media/ holds the file copies of items too large for a Parquet cell.
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".txt": "text/plain; charset=utf-8",
    ".pdf": "application/pdf",
}

KNOWN_LIMITS = (
    "Every picture, video, recording and text in this delivery carries a watermark or "
    "fingerprint that identifies this licence; document scans carry none.",
    "Demographic metadata was generalised until every combination is shared by at least "
    "k items (see the k-anonymity report), so it is coarser than what contributors declared.",
)
COLLECTION_PROCESS = (
    "Contributors uploaded their own recordings, pictures, videos and texts to fairtrain.",
    "Each item was scanned for personal data and redacted; its owner reviewed the redacted "
    "version and approved it before it was listed.",
    "Each item's owner set the terms this licence satisfies; consent-receipts.json lists "
    "the hash of every item's signed consent receipt.",
)


@dataclass(frozen=True, slots=True)
class _Planned:
    """One item to deliver, as read from the database before any byte is."""

    asset_id: str
    modality: str
    blob_id: str
    media_type: str
    metadata: dict[str, JSON]
    units: float
    uploaded_at: datetime


class _BlobReader:
    """A vault stream as the binary file object ``ExportItem.open`` must return."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        # Pieces are joined once: the exporter reads an embedded item in one call.
        pieces = [self._rest] if self._rest else []
        have = len(self._rest)
        while size < 0 or have < size:
            piece = next(self._chunks, None)
            if piece is None:
                break
            pieces.append(piece)
            have += len(piece)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._rest = b""
        if 0 <= size < len(data):
            data, self._rest = data[:size], data[size:]
        return data

    def close(self) -> None:
        self._rest = b""


def _withheld_code(asset: Asset, item: DatasetItem) -> str | None:
    state = AssetState(asset.state)
    if state == AssetState.WITHDRAWN:
        return "asset_withdrawn"
    if state == AssetState.ERASED:
        return "asset_erased"
    if state != AssetState.LISTED or asset.redacted_blob_id is None:
        return "asset_unavailable"
    if not item.receipt_sha256:
        return "consent_receipt_missing"
    return None


def _plan(session: Session, licence: Licence) -> tuple[list[_Planned], list[dict[str, Any]]]:
    rows = session.execute(
        select(DatasetItem, Asset, AssetPolicy.version)
        .join(
            LicenceItem,
            (LicenceItem.asset_id == DatasetItem.asset_id) & (LicenceItem.licence_id == licence.id),
        )
        .join(Asset, Asset.id == DatasetItem.asset_id)
        .join(AssetPolicy, AssetPolicy.id == DatasetItem.policy_id)
        .where(DatasetItem.version_id == licence.version_id)
        .order_by(DatasetItem.asset_id)
    )
    planned: list[_Planned] = []
    withheld: list[dict[str, Any]] = []
    for item, asset, policy_version in rows:
        code = _withheld_code(asset, item)
        if code is not None:
            withheld.append({"asset_id": asset.id, "code": code})
            continue
        assert asset.redacted_blob_id is not None and item.receipt_sha256 is not None
        metadata: dict[str, JSON] = {
            key: value for key, value in dict(item.delivered).items() if value is not None
        }
        metadata["consent_receipt_sha256"] = item.receipt_sha256
        metadata["policy_version"] = int(policy_version)
        planned.append(
            _Planned(
                asset_id=asset.id,
                modality=item.modality,
                blob_id=asset.redacted_blob_id,
                media_type=asset.redacted_media_type or "application/octet-stream",
                metadata=metadata,
                units=item.units,
                uploaded_at=asset.created_at,
            )
        )
    return planned, withheld


def _representation(version: DatasetVersion) -> RepresentationReport:
    report = dict(version.representation or {})
    dimensions = [str(d) for d in report.get("dimensions", [])]
    attribute = "+".join(dimensions) if dimensions else "all"
    groups = tuple(
        RepresentationGroup(
            attribute=attribute,
            group=str(group.get("label", "")),
            count=int(group.get("count", 0)),
            share=float(group.get("share", 0.0)),
            target=group.get("target_share"),
            gap=group.get("gap"),
        )
        for group in report.get("groups", [])
    )
    return RepresentationReport(
        groups=groups, divergence=float(report.get("total_variation") or 0.0)
    )


def _k_anonymity(version: DatasetVersion) -> KAnonymityReport:
    report = dict(version.anonymity or {})
    levels = dict(report.get("generalisation", {}))
    return KAnonymityReport(
        k=int(report.get("k", 0)),
        quasi_identifiers=tuple(str(q) for q in report.get("quasi_identifiers", [])),
        generalisations=tuple(
            f"{name.replace('_', ' ')}: {entry.get('meaning', '')}."
            for name, entry in sorted(levels.items())
        ),
        records_suppressed=int(report.get("suppressed", 0)),
    )


def _description(
    session: Session,
    runtime: Runtime,
    licence: Licence,
    planned: list[_Planned],
    now: datetime,
) -> ExportDescription:
    settings = runtime.settings
    version = session.get(DatasetVersion, licence.version_id)
    dataset = session.get(Dataset, licence.dataset_id)
    organisation = session.get(Organisation, licence.org_id)
    assert version is not None and dataset is not None and organisation is not None
    purpose = PURPOSES[licence.purpose]
    languages = sorted({str(p.metadata["language"]) for p in planned if "language" in p.metadata})
    modalities = tuple(m for m in Modality if any(p.modality == m.value for p in planned))
    uploads = [p.uploaded_at for p in planned]
    return ExportDescription(
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        version_id=version.id,
        version_number=version.number,
        licence_id=licence.id,
        licensee=organisation.name,
        purpose=DeclaredPurpose(purpose.key, purpose.label, purpose.words),
        territory=(licence.territory,),
        licence_start=licence.starts_at,
        licence_end=licence.ends_at,
        languages=tuple(languages),
        modalities=modalities,
        item_count=len(planned),
        contribution_units=round(sum(p.units for p in planned), 6),
        representation=_representation(version),
        k_anonymity=_k_anonymity(version),
        known_limits=KNOWN_LIMITS,
        collection_process=COLLECTION_PROCESS,
        platform_base_url=settings.base_url,
        public_key_id=key_id(platform_signing_key(settings).public_key()),
        created_at=now,
        collection_period=(min(uploads), max(uploads)) if uploads else None,
    )


def _decrypt_to(session: Session, runtime: Runtime, blob_id: str, target: Path) -> None:
    # The iterator is read to its end before the bytes are used: the vault reports a cut
    # or altered object only there.
    with target.open("wb") as handle:
        for piece in runtime.vault.open_blob(session, blob_id):
            handle.write(piece)


def _measured(path: Path, modality: str) -> dict[str, JSON]:
    """What the delivered file itself says (its size in pixels, its sampling)."""
    if modality == "image":
        with Image.open(path) as image:
            return {"width": image.width, "height": image.height}
    if modality == "audio":
        info = soundfile.info(str(path))
        return {
            "sample_rate": int(info.samplerate),
            "channels": int(info.channels),
            "duration_seconds": float(info.duration),
        }
    return {}


def _marked(source: Path, target: Path, planned: _Planned, key: bytes) -> MarkedCopy:
    try:
        return mark_copy(
            source, target, modality=planned.modality, media_type=planned.media_type, key=key
        )
    except (av.error.FFmpegError, soundfile.LibsndfileError) as error:
        raise InvalidInput(
            f"Item {planned.asset_id} cannot be decoded to apply its watermark.",
            code="corrupt_media",
        ) from error


def _vault_opener(session: Session, runtime: Runtime, blob_id: str) -> Callable[[], BinaryIO]:
    def open_item() -> BinaryIO:
        # The exporter reads and closes it: all of BinaryIO it uses.
        return cast(BinaryIO, _BlobReader(runtime.vault.open_blob(session, blob_id)))

    return open_item


def _file_opener(path: Path) -> Callable[[], BinaryIO]:
    def open_item() -> BinaryIO:
        return path.open("rb")

    return open_item


def _items(
    session: Session,
    runtime: Runtime,
    licence: Licence,
    planned: list[_Planned],
    scratch: Path,
    delivered: list[dict[str, Any]],
) -> Iterator[ExportItem]:
    """Each item's delivered copy, made when the exporter asks for it and deleted once it
    has been written: the scratch disk holds one item at a time."""
    secret = watermark_secret(runtime.settings)
    for item in planned:
        key = watermark_key(secret, licence.id, item.asset_id)
        media_type, extension = delivered_type(item.media_type)
        metadata = dict(item.metadata)
        if item.modality == Modality.DOCUMENT.value:
            # Nothing to mark: streamed from the vault as it is, its digest is the blob's.
            blob = session.get(VaultBlob, item.blob_id)
            assert blob is not None
            size, sha256, method = blob.plaintext_size, blob.sha256, NO_MARK
            target = None
            opener = _vault_opener(session, runtime, item.blob_id)
            source_checked = True  # the vault refuses bytes that differ from blob.sha256
        else:
            source = scratch / "source"
            target = scratch / f"delivered.{extension}"
            _decrypt_to(session, runtime, item.blob_id, source)
            copy = _marked(source, target, item, key)
            source.unlink()
            media_type, extension, method = copy.media_type, copy.extension, copy.method
            sha256, size = sha256_file(target)
            metadata |= _measured(target, item.modality)
            opener = _file_opener(target)
            source_checked = False
        metadata["media_type"] = media_type
        delivered.append(
            {
                "licence_id": licence.id,
                "asset_id": item.asset_id,
                "modality": item.modality,
                "method": method,
                "sha256": sha256,
                "size": size,
            }
        )
        yield ExportItem(
            key=item.asset_id,
            modality=Modality(item.modality),
            extension=extension,
            media_type=media_type,
            size=size,
            sha256=sha256,
            open=opener,
            metadata=metadata,
            source_checked=source_checked,
        )
        if target is not None:
            target.unlink(missing_ok=True)


def _file_type(path: str) -> str:
    if path == "croissant.json":
        return "application/ld+json"
    return _FILE_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


_END = object()
_ABORT = object()


class _Aborted(Exception):
    """Raised into a vault store whose shard was abandoned: the vault keeps nothing."""


class _VaultSink:
    """A shard or file copy written straight into the vault, never to the scratch disk.

    The format writer writes into it (tarfile in the session's thread, pyarrow in its
    writer thread); the bytes are cut into the vault's chunk size and handed (a few
    chunks at most in flight) to a thread that hashes, encrypts and writes them. ``seal``
    ends the stream and returns a claim, the sink itself: calling it (in the session's
    thread) waits for that thread and records the blob. ``abort`` makes the store keep
    nothing."""

    def __init__(self, sealer: _VaultSealer, store: BlobStore) -> None:
        self._sealer = sealer
        self._store = store
        self._buffer = bytearray()
        self._size = 0
        self._chunks: queue.Queue[object] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._blob: VaultBlob | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="export-store", daemon=True)
        self._thread.start()

    @property
    def settled(self) -> bool:
        return self._blob is not None

    def __call__(self) -> tuple[str, int]:
        if self._blob is None:
            self._thread.join()
            if self._failure is not None:
                raise self._failure
            self._blob = self._store.finish(self._sealer.session)
            self._sealer.stored.setdefault(
                (self._blob.sha256, self._blob.plaintext_size), []
            ).append(self._blob)
        return self._blob.sha256, self._blob.plaintext_size

    def _pieces(self) -> Iterator[bytes]:
        while True:
            piece = self._chunks.get()
            if piece is _END:
                return
            if piece is _ABORT:
                raise _Aborted
            assert isinstance(piece, bytes)
            yield piece

    def _run(self) -> None:
        try:
            self._store.write(self._pieces())
        except BaseException as error:
            self._failure = error

    def _send(self, piece: object) -> None:
        while self._thread.is_alive():
            try:
                self._chunks.put(piece, timeout=0.05)
            except queue.Full:
                continue
            return
        # The store ended before its stream did: it failed (full disk…), say why.
        if self._failure is not None and not isinstance(self._failure, _Aborted):
            raise self._failure

    def write(self, data: bytes, /) -> int:
        size = len(data)
        self._size += size
        if not self._buffer and size == _PIECE and isinstance(data, bytes):
            self._send(data)  # the common case (tar members): passed on as it is
            return size
        view = memoryview(data)
        if self._buffer:
            room = _PIECE - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) < _PIECE:
                return size
            self._send(bytes(self._buffer))
            self._buffer.clear()
        # A large write (a Parquet page of big cells) is cut without going through the
        # buffer: one copy per piece.
        while len(view) >= _PIECE:
            self._send(view[:_PIECE].tobytes())
            view = view[_PIECE:]
        self._buffer += view
        return size

    def tell(self) -> int:
        return self._size

    def close(self) -> None:
        """Nothing: a sink ends with ``seal`` or ``abort``."""

    def flush(self) -> None:
        """Nothing: what is written is on its way already."""

    @property
    def closed(self) -> bool:
        return self._ended

    def seal(self) -> Callable[[], tuple[str, int]]:
        if self._buffer:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        self._send(_END)
        self._ended = True
        self._sealer.pending.append(self)
        return self

    def abort(self) -> None:
        """Never raises: it runs while another error is on its way out."""
        if not self._ended:
            self._ended = True
            self._buffer.clear()
            # A store that already failed has ended: nothing to tell it.
            with contextlib.suppress(BaseException):
                self._send(_ABORT)
        self._thread.join()

    def wait(self) -> None:
        self.abort()


class _VaultSealer:
    """Opens a vault store for each shard and file copy the exporter writes (``open``):
    the bytes go straight into the vault, never to the scratch disk, and the vault's
    digest of what it stored is the one the manifest records, so nothing is hashed
    twice. The small files (card, receipts…) are written to scratch and stored at the
    end (``blob_for``).

    Each store runs in a thread of its own while the export goes on, so the vault's
    hashing, encryption, writes and fsyncs overlap the formats' work. A sealed store is
    recorded in the session (this thread) when the exporter asks for its digest, or
    before another store opens once ``in_flight`` sealed ones wait: that bounds the
    threads and the memory in flight."""

    def __init__(self, session: Session, runtime: Runtime, owner: str, in_flight: int = 2) -> None:
        self.session = session
        self._runtime = runtime
        self._owner = owner
        self._in_flight = in_flight
        self._open: list[_VaultSink] = []
        self.pending: list[_VaultSink] = []
        self.stored: dict[tuple[str, int], list[VaultBlob]] = {}

    def _begin(self, path: str) -> BlobStore:
        self.pending = [store for store in self.pending if not store.settled]
        while len(self.pending) >= self._in_flight:
            self.pending.pop(0)()
        return self._runtime.vault.begin_store(
            self.session,
            owner=self._owner,
            media_type=_file_type(path),
            # Shards are capped by the format layer; one item can be a shard of its own.
            max_bytes=sys.maxsize,
        )

    def open(self, path: str) -> ShardSink:
        """A shard (Parquet or WebDataset) or a file copy: written straight into the vault."""
        sink = _VaultSink(self, self._begin(path))
        self._open.append(sink)
        return sink

    def wait(self) -> None:
        """Let every store end (after a failure: those not sealed keep nothing, and the
        rollback deletes the others; no thread still writes when it does)."""
        for sink in self._open:
            sink.wait()

    def _store(self, path: Path, name: str) -> VaultBlob:
        with path.open("rb") as handle:
            return self._runtime.vault.store_blob(
                self.session,
                owner=self._owner,
                stream=handle,
                media_type=_file_type(name),
                max_bytes=os.fstat(handle.fileno()).st_size,
            )

    def blob_for(self, directory: Path, entry: dict[str, Any]) -> VaultBlob:
        """The blob holding a manifest entry: stored as it was sealed, or stored now."""
        earlier = self.stored.get((entry["sha256"], int(entry["size"])))
        if earlier:
            return earlier.pop()
        return self._store(directory / entry["path"], entry["path"])


def _store_files(
    session: Session,
    sealer: _VaultSealer,
    export: LicenceExport,
    directory: Path,
    manifest: dict[str, Any],
) -> int:
    entries = [*manifest["files"]]
    manifest_sha, manifest_size = sha256_file(directory / MANIFEST_FILE)
    entries.append({"path": MANIFEST_FILE, "sha256": manifest_sha, "size": manifest_size})
    total = 0
    for entry in entries:
        blob = sealer.blob_for(directory, entry)
        if blob.sha256 != entry["sha256"] or blob.plaintext_size != entry["size"]:
            raise Conflict(
                f"{entry['path']} changed on the scratch disk before it was stored.",
                code="export_file_changed",
            )
        session.add(
            ExportFile(
                export_id=export.id,
                path=entry["path"],
                blob_id=blob.id,
                sha256=blob.sha256,
                size=blob.plaintext_size,
                media_type=blob.media_type,
            )
        )
        total += blob.plaintext_size
        # Shards and file copies were never on the scratch disk; the rest is removed.
        (directory / entry["path"]).unlink(missing_ok=True)
    session.flush()
    return total


def _build(
    session: Session,
    runtime: Runtime,
    export: LicenceExport,
    licence: Licence,
    planned: list[_Planned],
    scratch: Path,
    now: datetime,
) -> None:
    if not planned:
        raise Conflict(
            "Nothing of this licence can be delivered: every item was withdrawn or erased.",
            code="export_nothing_to_deliver",
        )
    # The licence's own record order: a leaked subset that keeps the order names it.
    own_key = licence_key(watermark_secret(runtime.settings), licence.id)
    order = licence_order([p.asset_id for p in planned], key=own_key)
    by_id = {p.asset_id: p for p in planned}
    ordered = [by_id[asset_id] for asset_id in order]
    description = _description(session, runtime, licence, ordered, now)
    delivered: list[dict[str, Any]] = []
    out = scratch / "export"
    sealer = _VaultSealer(session, runtime, licence_owner(export.licence_id))
    try:
        manifest = export_dataset(
            _items(session, runtime, licence, ordered, scratch, delivered),
            description,
            out,
            formats=[ExportFormat(f) for f in export.formats],
            # Scratch space: the vault's writes are the durable ones.
            durable=False,
            sinks=sealer.open,
        )
    finally:
        sealer.wait()
    digest = manifest_digest(manifest)
    total = _store_files(session, sealer, export, out, manifest)
    rows = [{"export_id": export.id, **row} for row in delivered]
    for start in range(0, len(rows), 5000):
        session.execute(insert(DeliveredItem), rows[start : start + 5000])
    export.state = ExportState.READY
    export.manifest_sha256 = digest
    export.item_count = len(planned)
    export.total_bytes = total
    export.finished_at = utcnow()
    session.flush()
    methods = Counter(str(row["method"]) for row in delivered)
    append_event(
        session,
        actor=SYSTEM,
        action="delivery.export_ready",
        subject=f"export:{export.id}",
        payload={
            "licence": licence.id,
            "version": licence.version_id,
            "manifest_sha256": digest,
            "items": len(planned),
            "files": len(manifest["files"]) + 1,
            "bytes": total,
            "withheld": len(export.withheld),
            "methods": dict(sorted(methods.items())),
        },
    )


@job_handler(BUILD_JOB)
def build_export(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    """Build one export; idempotent (a ready, failed or shredded export is left alone)."""
    export = session.get(
        LicenceExport, str(payload.get("export_id")), with_for_update=True, populate_existing=True
    )
    if export is None or ExportState(export.state) != ExportState.REQUESTED:
        return
    licence = session.get(Licence, export.licence_id)
    assert licence is not None
    now = utcnow()
    scratch = runtime.settings.data_dir / "scratch" / "exports" / export.id
    # What an attempt that died left behind; the export directory must not exist.
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, mode=0o700)
    try:
        check_active(licence, now)
        planned, withheld = _plan(session, licence)
        export.withheld = withheld
        with session.begin_nested():
            _build(session, runtime, export, licence, planned, scratch, now)
    except DomainError as error:
        mark_failed(session, export, code=error.code, detail=error.detail, actor=SYSTEM)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
