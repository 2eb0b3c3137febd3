"""Response bodies of the assets API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AssetOut", "IdentifyIn", "JobOut", "RedactionEditsIn"]


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
    # What redaction did and what still identifies someone ("2 faces blurred, voice is
    # identifiable"): shown before approval.
    residual_risk: dict[str, Any] = Field(default_factory=dict)


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


class RedactionEditsIn(BaseModel):
    """The contributor's edits of a redaction; each replaces the previous edits whole.

    Text: ``keep_spans`` (detected spans to leave in, ``[start, end]`` as the report
    lists them) and ``redact_spans`` (more to replace). Pictures: ``own_face`` (a face's
    ref from the report, or ``"none"``) and ``blur_boxes`` (``[x1, y1, x2, y2]`` areas).
    Recordings and videos: ``own_speaker`` (the number of your voice in the report).
    """

    model_config = ConfigDict(extra="forbid")

    own_speaker: int | None = Field(default=None, ge=1, le=99)
    own_face: str | None = Field(default=None, min_length=1, max_length=40)
    keep_spans: list[list[int]] = Field(default_factory=list, max_length=500)
    redact_spans: list[list[int]] = Field(default_factory=list, max_length=500)
    blur_boxes: list[list[int]] = Field(default_factory=list, max_length=500)
