"""Terms per asset, versioned: a licence refers to the version it was granted under, so a
change applies to future licences only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = ["AssetPolicy", "ConsentReceiptRecord"]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class AssetPolicy(Base):
    """One version of one asset's ODRL policy, with its compiled, indexable form."""

    __tablename__ = "asset_policies"
    __table_args__ = (
        UniqueConstraint("asset_id", "version", name="uq_asset_policies_version"),
        Index("ix_asset_policies_current", "asset_id", "superseded_at"),
        Index("ix_asset_policies_owner", "owner_id", "created_at"),
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
