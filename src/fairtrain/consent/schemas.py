"""Request and response bodies of counterparty invites."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnswerIn",
    "AssetInvitesOut",
    "InviteCreatedOut",
    "InviteIn",
    "InviteOut",
    "InviteTermsOut",
    "InviteViewOut",
    "PartOut",
]


class InviteIn(BaseModel):
    """Invite the person of one part; ``name`` and ``email`` only remind you whom you asked
    (fairtrain sends nothing: you pass the link on)."""

    model_config = ConfigDict(extra="forbid")

    part: str = Field(
        min_length=3,
        max_length=240,
        description="A part id from the asset's privacy report, e.g. 'chat_sender:Ben Stone', "
        "'audio_channel:1', 'face:10,20,80,96'.",
    )
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)


class PartOut(BaseModel):
    id: str
    kind: str
    label: str
    included: bool  # in the current redacted version, by this person's consent


class InviteOut(BaseModel):
    id: str
    asset_id: str
    part: str
    part_kind: str
    name: str | None
    email: str | None
    status: str
    policy_id: str
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    withdrawn_at: datetime | None


class InviteCreatedOut(InviteOut):
    link: str = Field(description="Shown once: send it to the person. Only its hash is kept.")


class AssetInvitesOut(BaseModel):
    parts: list[PartOut]
    invites: list[InviteOut]


class InviteTermsOut(BaseModel):
    policy_id: str
    version: int
    sha256: str
    explanation: list[str]
    risk_notes: list[str]


class InviteViewOut(BaseModel):
    """What you appear in (your part only) and the terms, in plain words."""

    status: str
    modality: str
    part_kind: str
    part: str  # your part, described
    invited_by: str
    expires_at: datetime
    answered_at: datetime | None
    withdrawn_at: datetime | None
    terms: InviteTermsOut


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consent: bool
