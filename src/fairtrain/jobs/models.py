"""Background jobs as rows: their state is visible through the API and survives restarts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = ["FINAL_STATES", "Job", "JobState"]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # gave up after max attempts; visible to operators


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED})


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_updated", "state", "updated_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(120), index=True)
    # A job for the same (kind, dedupe_key) is enqueued once while it is not final.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    state: Mapped[JobState] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(80), nullable=True)  # who may read it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
