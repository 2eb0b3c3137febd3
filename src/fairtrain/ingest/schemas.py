"""Response bodies of the assets API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AssetOut", "IdentifyIn", "JobOut"]


class AssetOut(BaseModel):
    id: str
    state: str
    state_code: str | None
    state_reason: str | None
    modality: str | None
    media_type: str | None
    display_name: str
    size_bytes: int
    sha256: str
    duration_seconds: float | None
    language: str | None
    media_info: dict[str, Any]
    quality: dict[str, Any]
    privacy_report: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    listed_at: datetime | None
    job_id: str | None = None


class JobOut(BaseModel):
    id: str
    kind: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class IdentifyIn(BaseModel):
    """Which part of the asset is the contributor's: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    chat_sender: str | None = Field(default=None, min_length=1, max_length=200)
    audio_channel: int | None = Field(default=None, ge=0, le=7)
