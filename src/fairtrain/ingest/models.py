"""Assets: what a contributor uploaded, its processing state, and the dedup indexes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = ["TERMINAL_STATES", "Asset", "AssetFingerprint", "AssetState", "DuplicateFlag"]


class AssetState(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    AWAITING_REVIEW = "awaiting_review"  # redacted preview ready; the contributor decides
    LISTED = "listed"
    REJECTED = "rejected"  # refused by processing or an operator; the reason is stored
    WITHDRAWN = "withdrawn"
    ERASED = "erased"


TERMINAL_STATES = frozenset({AssetState.REJECTED, AssetState.ERASED})

# The state machine: which state may follow which. Enforced by ingest.service.
TRANSITIONS: dict[AssetState, frozenset[AssetState]] = {
    AssetState.UPLOADED: frozenset({AssetState.PROCESSING, AssetState.REJECTED, AssetState.ERASED}),
    AssetState.PROCESSING: frozenset(
        {AssetState.AWAITING_REVIEW, AssetState.REJECTED, AssetState.PROCESSING, AssetState.ERASED}
    ),
    AssetState.AWAITING_REVIEW: frozenset(
        {
            AssetState.LISTED,
            AssetState.REJECTED,
            AssetState.PROCESSING,
            AssetState.WITHDRAWN,
            AssetState.ERASED,
        }
    ),
    AssetState.LISTED: frozenset({AssetState.WITHDRAWN, AssetState.REJECTED, AssetState.ERASED}),
    AssetState.REJECTED: frozenset({AssetState.ERASED}),
    AssetState.WITHDRAWN: frozenset({AssetState.ERASED}),
    AssetState.ERASED: frozenset(),
}


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (
        Index("ix_assets_owner_created", "owner_id", "created_at"),
        Index("ix_assets_state_modality", "state", "modality"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    state: Mapped[AssetState] = mapped_column(String(20))
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    # Sniffed from the bytes; the client's name and type are kept only for display.
    modality: Mapped[str | None] = mapped_column(String(20), nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    display_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the uploaded bytes
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    redacted_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # What the redacted version is (a chat export becomes plain text, audio may become FLAC).
    redacted_media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    media_info: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    privacy_report: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AssetFingerprint(Base):
    """Band keys for near-duplicate lookup: an indexed equality match, never a scan.

    A perceptual hash split into bands finds any hash within a small Hamming distance
    (pigeonhole); MinHash LSH bands do the same for text, Chromaprint bands for audio.
    """

    __tablename__ = "asset_fingerprints"
    __table_args__ = (Index("ix_asset_fingerprints_lookup", "kind", "band_key"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    band_key: Mapped[str] = mapped_column(String(80))
    # The whole perceptual hash (images): candidates are checked without loading assets.
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)


class DuplicateFlag(Base):
    """Same or near-same content from the platform: shown to operators, never dropped."""

    __tablename__ = "duplicate_flags"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    duplicate_of: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # exact | image | audio | text
    similarity: Mapped[float] = mapped_column(Float)
    same_owner: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ResumableUpload(Base):
    """A tus 1.0 upload in progress. Each PATCH is stored as an encrypted segment."""

    __tablename__ = "resumable_uploads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    length: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    offset: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    asset_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UploadSegment(Base):
    __tablename__ = "upload_segments"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    upload_id: Mapped[str] = mapped_column(ForeignKey("resumable_uploads.id"), index=True)
    start: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    blob_id: Mapped[str] = mapped_column(String(40))
