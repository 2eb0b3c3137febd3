"""Withdrawals, the notices they send to licensees, and the proof of deletion.

A ``Withdrawal`` is one request of a contributor (one asset, several, or everything;
optionally one purpose or one buyer organisation only). Each asset it covers gets a
``WithdrawnScope`` row, which is what the catalogue folds into the asset's terms (see
``catalog.service.sync_entry``), so no new licence, campaign or dataset build can include
it. Each affected licence gets one ``Notice``; each notice goes to each webhook endpoint
of the licensee as a ``WebhookDelivery`` (retried with backoff, then dead-lettered), and
is readable from the pull feed. The licensee acknowledges it and attests deletion with a
JWS signed by a key it registered (``BuyerKey``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = [
    "BuyerKey",
    "DeliveryState",
    "Notice",
    "NoticeState",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Withdrawal",
    "WithdrawnScope",
]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class Withdrawal(Base):
    __tablename__ = "withdrawals"
    __table_args__ = (
        UniqueConstraint("owner_id", "scope_sha256", name="uq_withdrawals_scope"),
        Index("ix_withdrawals_owner", "owner_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # SHA-256 of (what, purpose, organisation): asking again returns this withdrawal.
    scope_sha256: Mapped[str] = mapped_column(String(64))
    everything: Mapped[bool]
    asset_ids: Mapped[list[str]] = mapped_column(JSONValue, default=list)
    purpose: Mapped[str | None] = mapped_column(String(60), nullable=True)  # None: all
    org_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # None: every buyer
    receipt_ids: Mapped[list[str]] = mapped_column(JSONValue, default=list)
    dataset_versions: Mapped[list[str]] = mapped_column(JSONValue, default=list)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WithdrawnScope(Base):
    """One asset no longer offered for one purpose (None: any) to one buyer (None: any)."""

    __tablename__ = "withdrawn_scopes"
    __table_args__ = (Index("ix_withdrawn_scopes_asset", "asset_id"),)

    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    withdrawal_id: Mapped[str] = mapped_column(ForeignKey("withdrawals.id"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    purpose: Mapped[str | None] = mapped_column(String(60), nullable=True)
    org_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NoticeState(StrEnum):
    """notified → acknowledged → attested; notified | acknowledged → overdue → attested."""

    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    ATTESTED = "attested"
    OVERDUE = "overdue"  # the deletion deadline passed without an attestation


class Notice(Base):
    """What one licensee is told about one withdrawal, and what it answered."""

    __tablename__ = "withdrawal_notices"
    __table_args__ = (
        UniqueConstraint("withdrawal_id", "licence_id", name="uq_withdrawal_notices_licence"),
        Index("ix_withdrawal_notices_feed", "org_id", "created_at", "id"),
        Index("ix_withdrawal_notices_state", "state", "deadline_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    withdrawal_id: Mapped[str] = mapped_column(ForeignKey("withdrawals.id"))
    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    asset_ids: Mapped[list[str]] = mapped_column(JSONValue, default=list)
    purpose: Mapped[str | None] = mapped_column(String(60), nullable=True)
    # The licence's words on trained models and copies, stated in the notice.
    obligation: Mapped[str] = mapped_column(Text)
    deletion_days: Mapped[int] = mapped_column(Integer)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[dict[str, Any]] = mapped_column(JSONValue)  # the notice as sent
    state: Mapped[NoticeState] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attestation: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, nullable=True)
    attestation_jws: Mapped[str | None] = mapped_column(Text, nullable=True)
    attestation_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookEndpoint(Base):
    """Where a buyer organisation wants notices pushed (Standard Webhooks)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_org", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    url: Mapped[str] = mapped_column(String(2000))
    # The 32-byte HMAC key of the ``whsec_`` secret, sealed under the organisation's vault
    # data key (``vault.service.seal_secret``): every delivery is signed with it, so it is
    # kept readable to the platform, never to a reader of the database alone.
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary(160))
    active: Mapped[bool]
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # gave up after the last attempt: visible to operators


class WebhookDelivery(Base):
    """One notice to one endpoint; its id is the ``webhook-id`` (the same on every retry,
    so a receiver can drop duplicates)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("notice_id", "endpoint_id", name="uq_webhook_deliveries_target"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("withdrawal_notices.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    state: Mapped[DeliveryState] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BuyerKey(Base):
    """An Ed25519 public key a buyer organisation signs its deletion attestations with."""

    __tablename__ = "buyer_keys"
    __table_args__ = (Index("ix_buyer_keys_org", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the key's id (kid)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
