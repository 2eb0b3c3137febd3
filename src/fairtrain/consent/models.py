"""Terms per asset, versioned: a licence refers to the version it was granted under, so a
change applies to future licences only. Counterparty invites: the consent of a person who
appears in someone else's data, for their own part of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = [
    "AssetPolicy",
    "ConsentReceiptRecord",
    "CounterpartyInvite",
    "CounterpartyReceipt",
    "InviteStatus",
]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class AssetPolicy(Base):
    """One version of one asset's ODRL policy, with its compiled, indexable form."""

    __tablename__ = "asset_policies"
    __table_args__ = (
        UniqueConstraint("asset_id", "version", name="uq_asset_policies_version"),
        Index("ix_asset_policies_current", "asset_id", "superseded_at"),
        Index("ix_asset_policies_owner", "owner_id", "created_at"),
        # The expiry round asks for terms whose end has passed: a range, not a scan.
        Index("ix_asset_policies_ending", "not_after"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer)
    template: Mapped[str | None] = mapped_column(String(40), nullable=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONValue)  # ODRL JSON-LD
    sha256: Mapped[str] = mapped_column(String(64))  # of the document's canonical JSON
    # Compiled (see consent.compile): purpose masks, territory list, term, price, flags.
    permit_mask: Mapped[int] = mapped_column(_BIG)
    ban_mask: Mapped[int] = mapped_column(_BIG)
    territories: Mapped[str | None] = mapped_column(Text, nullable=True)  # ",DE,FR,"
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    term_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price_minor: Mapped[int | None] = mapped_column(_BIG, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    exclusive: Mapped[bool]
    sublicensing: Mapped[bool]
    exact: Mapped[bool]  # False: evaluate the document in full after a compiled query
    # [path, kind, purpose mask] of each simple rule: names the deciding rule (compile).
    rules: Mapped[list[Any]] = mapped_column(JSONValue, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The DPV consent state of this version: ConsentGiven, RenewedConsentGiven (a renewal
    # extended it), or ConsentExpired once ``not_after`` passed (consent.expiry).
    status: Mapped[str] = mapped_column(String(40), default="ConsentGiven")
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ConsentReceiptRecord(Base):
    """A signed consent receipt as issued (the JWS is what the owner downloads)."""

    __tablename__ = "consent_receipts"
    __table_args__ = (Index("ix_consent_receipts_owner", "owner_id", "issued_at"),)

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    asset_id: Mapped[str | None] = mapped_column(ForeignKey("assets.id"), nullable=True)
    policy_id: Mapped[str | None] = mapped_column(ForeignKey("asset_policies.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    receipt: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    jws: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InviteStatus(StrEnum):
    """pending → consented | refused | expired | revoked | invalidated;
    consented → withdrawn | invalidated."""

    PENDING = "pending"
    CONSENTED = "consented"
    REFUSED = "refused"
    EXPIRED = "expired"  # not answered in time
    REVOKED = "revoked"  # taken back by the contributor before an answer
    WITHDRAWN = "withdrawn"
    INVALIDATED = "invalidated"  # the asset's terms changed after it was made or answered


class CounterpartyInvite(Base):
    """A request to one person for consent to their part of one asset.

    The part is named as the asset's privacy report names it (``part_kind`` + ``part_ref``:
    a chat sender as the export spells it, a call channel, a face box). The invitee's
    name and e-mail are only what the contributor typed to remember whom they asked; both
    are optional and never logged or audited. The link's token is never stored: only its
    SHA-256, so a database leak opens no invite.
    """

    __tablename__ = "counterparty_invites"
    __table_args__ = (
        UniqueConstraint("token_sha256", name="uq_counterparty_invites_token"),
        Index("ix_counterparty_invites_asset", "asset_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # chat_sender | audio_channel | face | speaker
    part_kind: Mapped[str] = mapped_column(String(20))
    part_ref: Mapped[str] = mapped_column(String(200))
    invitee_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    invitee_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[InviteStatus] = mapped_column(String(20))
    # The terms the counterparty is shown and answers to: the asset's policy version then.
    policy_id: Mapped[str] = mapped_column(ForeignKey("asset_policies.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CounterpartyReceipt(Base):
    """A signed consent receipt issued to a counterparty (downloaded with their link)."""

    __tablename__ = "counterparty_receipts"
    __table_args__ = (Index("ix_counterparty_receipts_invite", "invite_id", "issued_at"),)

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    invite_id: Mapped[str] = mapped_column(ForeignKey("counterparty_invites.id"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    policy_id: Mapped[str] = mapped_column(ForeignKey("asset_policies.id"))
    status: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    receipt: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    jws: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
