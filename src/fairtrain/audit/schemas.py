"""Response bodies of the audit API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["AuditEventOut", "AuditPage", "ChainStatus"]


class AuditEventOut(BaseModel):
    seq: int
    event_id: str
    occurred_at: str = Field(description="Exactly as hashed: UTC, microseconds, 'Z'.")
    actor: str
    action: str
    subject: str
    payload: dict[str, Any] | None
    payload_digest: str
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_after_seq: int | None = Field(description="Pass as after_seq for the next page.")


class ChainStatus(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str | None
    # What was checked: "full" recomputed every event; "since_checkpoint" checked the
    # latest signed checkpoint (tree size below) and recomputed the events from the one
    # it signed on (verified_from_seq), not the ones before.
    scope: Literal["full", "since_checkpoint"]
    verified_from_seq: int
    checkpoint_tree_size: int | None
