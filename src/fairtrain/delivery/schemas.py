"""Request and response bodies of the delivery routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["ExportFileOut", "ExportIn", "ExportOut", "FailureOut", "WithheldOut"]


class ExportIn(BaseModel):
    """What an export request may choose. Without a body (or without ``formats``) both
    formats are delivered; naming one builds and stores only that one (half the bytes
    written for a buyer who trains from one of them)."""

    formats: list[Literal["parquet", "webdataset"]] | None = Field(
        default=None, min_length=1, max_length=2
    )


class ExportFileOut(BaseModel):
    path: str
    sha256: str
    size: int
    media_type: str
    # A signed link for the licence holder (absent for operators, who never download).
    url: str | None
    expires_at: datetime | None


class FailureOut(BaseModel):
    code: str
    detail: str


class WithheldOut(BaseModel):
    asset_id: str
    code: str  # asset_withdrawn, asset_erased, asset_unavailable, consent_receipt_missing


class ExportOut(BaseModel):
    id: str
    licence_id: str
    version_id: str
    # requested, building, ready, failed or shredded
    state: str
    formats: list[str]
    created_at: datetime
    finished_at: datetime | None
    # SHA-256 of manifest.json: check the downloaded manifest against it first.
    manifest_sha256: str | None
    item_count: int | None
    total_bytes: int | None
    withheld: list[WithheldOut]
    failure: FailureOut | None
    files: list[ExportFileOut]
