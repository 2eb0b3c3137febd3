"""Licensing: quotes, orders with their invoices, and licence agreements.

A **quote** prices one dataset version for one licence (purpose, territory, term): the
contributors' prices item by item, the platform fee, the total, and a hash of exactly
which terms versions it priced. An **order** accepts a quote (once: a retried request
with the same idempotency key, or a second order for the same quote, returns the first)
and issues an invoice. When the payment is confirmed the **licence** is granted: an ODRL
Agreement signed by the platform, and one ``LicenceItem`` per asset saying what its
owner earns from this licence.
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
)
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = [
    "InvoiceCounter",
    "Licence",
    "LicenceItem",
    "LicenceState",
    "Order",
    "OrderState",
    "Quote",
]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class Quote(Base):
    __tablename__ = "quotes"
    __table_args__ = (Index("ix_quotes_org", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    version_id: Mapped[str] = mapped_column(ForeignKey("dataset_versions.id"))
    purpose: Mapped[str] = mapped_column(String(60))
    territory: Mapped[str] = mapped_column(String(2))
    term_days: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    item_count: Mapped[int] = mapped_column(Integer)
    subtotal_minor: Mapped[int] = mapped_column(_BIG)  # the contributors' prices
    fee_bps: Mapped[int] = mapped_column(Integer)
    fee_minor: Mapped[int] = mapped_column(_BIG)  # the platform's fee, on top
    total_minor: Mapped[int] = mapped_column(_BIG)
    # SHA-256 of [(asset, terms version, price)]: what exactly was priced.
    lines_sha256: Mapped[str] = mapped_column(String(64))
    renews_licence_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderState(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    CANCELLED = "cancelled"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key", name="uq_orders_idempotency"),
        Index("ix_orders_state", "state", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quotes.id"), unique=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    invoice_number: Mapped[str] = mapped_column(String(40), unique=True)
    state: Mapped[OrderState] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(_BIG)
    payment_method: Mapped[str] = mapped_column(String(40))
    payment_reference: Mapped[str | None] = mapped_column(String(140), nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InvoiceCounter(Base):
    """Invoice numbers run without gaps per year (what tax authorities ask for)."""

    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class LicenceState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # its term ended: treated as a withdrawal for this buyer
    SUSPENDED = "suspended"  # by an operator (e.g. a deletion attestation overdue)


class Licence(Base):
    __tablename__ = "licences"
    __table_args__ = (
        Index("ix_licences_org", "org_id", "created_at"),
        Index("ix_licences_state_end", "state", "ends_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    version_id: Mapped[str] = mapped_column(ForeignKey("dataset_versions.id"))
    purpose: Mapped[str] = mapped_column(String(60))
    territory: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(_BIG)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[LicenceState] = mapped_column(String(20))
    agreement: Mapped[dict[str, Any]] = mapped_column(JSONValue)  # ODRL Agreement JSON-LD
    agreement_jws: Mapped[str] = mapped_column(Text)
    agreement_sha256: Mapped[str] = mapped_column(String(64))
    renews_licence_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(60), nullable=True)


class LicenceItem(Base):
    """One asset of a licence and what its owner earns from it."""

    __tablename__ = "licence_items"
    __table_args__ = (
        Index("ix_licence_items_licence", "licence_id", "asset_id"),
        Index("ix_licence_items_owner", "owner_id", "licence_id"),
        Index("ix_licence_items_asset", "asset_id"),
    )

    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    policy_id: Mapped[str] = mapped_column(ForeignKey("asset_policies.id"))
    units: Mapped[float] = mapped_column(Float)
    amount_minor: Mapped[int] = mapped_column(_BIG)
