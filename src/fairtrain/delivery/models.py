"""Delivery tables: exports of licences, the files each holds, what each item was marked
with, downloads, and the per-licence download rate limit.

An export's files are vault blobs owned by the licence (``licence:lic_…``), so they are
sealed with a data key of that licence alone: shredding it makes every cached export of
the licence unreadable at once. The rows hold ids, digests and sizes, never content.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = [
    "OPEN_STATES",
    "DeliveredItem",
    "DownloadBucket",
    "DownloadRecord",
    "ExportFile",
    "ExportState",
    "LicenceExport",
]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class ExportState(StrEnum):
    # Stored states. While the build job runs, an export that is still ``requested`` in
    # its row is reported as ``building`` (the job row says so; see delivery.service).
    REQUESTED = "requested"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"
    # Its data key was destroyed (the licence ended, or an asset was withdrawn): nothing
    # of it can be read any more. A new export can be asked for while the licence is active.
    SHREDDED = "shredded"


# At most one export per (licence, version) in these states: asking again returns it.
OPEN_STATES = (ExportState.REQUESTED, ExportState.BUILDING, ExportState.READY)
_OPEN = "state IN ('requested', 'building', 'ready')"


class LicenceExport(Base):
    __tablename__ = "licence_exports"
    __table_args__ = (
        Index(
            "uq_licence_exports_open",
            "licence_id",
            "version_id",
            unique=True,
            sqlite_where=text(_OPEN),
            postgresql_where=text(_OPEN),
        ),
        Index("ix_licence_exports_licence", "licence_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("dataset_versions.id"))
    state: Mapped[ExportState] = mapped_column(String(20))
    formats: Mapped[list[str]] = mapped_column(JSONValue)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # SHA-256 of manifest.json as written: what the buyer checks the manifest against.
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    item_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_bytes: Mapped[int | None] = mapped_column(_BIG, nullable=True)
    # Items of the licence left out of this export, and why: [{"asset_id", "code"}].
    withheld: Mapped[list[dict[str, Any]]] = mapped_column(JSONValue, default=list)
    failure_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    failure_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ExportFile(Base):
    """One file of a ready export (a shard, the manifest, the card…) and its vault blob."""

    __tablename__ = "licence_export_files"
    __table_args__ = (UniqueConstraint("export_id", "path", name="uq_licence_export_files_path"),)

    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    export_id: Mapped[str] = mapped_column(ForeignKey("licence_exports.id"), index=True)
    path: Mapped[str] = mapped_column(String(255))
    blob_id: Mapped[str] = mapped_column(ForeignKey("vault_blobs.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(_BIG)
    media_type: Mapped[str] = mapped_column(String(100))


class DeliveredItem(Base):
    """One item of an export as delivered: which mark it carries and the digest of the
    delivered bytes (a byte-identical leak is found by it; ``fairtrain trace`` derives
    the candidates' keys from the licence and the asset)."""

    __tablename__ = "delivered_items"
    __table_args__ = (
        UniqueConstraint("export_id", "asset_id", name="uq_delivered_items_asset"),
        Index("ix_delivered_items_asset", "asset_id", "licence_id"),
        Index("ix_delivered_items_licence", "licence_id", "method"),
    )

    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    export_id: Mapped[str] = mapped_column(ForeignKey("licence_exports.id"))
    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    modality: Mapped[str] = mapped_column(String(20))
    # image_spread_spectrum, video_spread_spectrum, audio_spread_spectrum, text_variants,
    # or none (documents: no mark survives for a PDF).
    method: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(_BIG)


class DownloadRecord(Base):
    """One signed link used: the first request through it is audited, and later ones
    (resumed ranges) are only counted here."""

    __tablename__ = "export_downloads"

    link_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    export_id: Mapped[str] = mapped_column(ForeignKey("licence_exports.id"), index=True)
    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id"), index=True)
    path: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(80))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    requests: Mapped[int] = mapped_column(Integer)
    bytes_requested: Mapped[int] = mapped_column(_BIG)


class DownloadBucket(Base):
    """The token bucket of a licence's download requests (see delivery.service)."""

    __tablename__ = "download_buckets"

    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id"), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
