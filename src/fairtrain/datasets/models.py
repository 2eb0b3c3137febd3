"""Datasets: a buyer's selection, frozen into immutable, content-addressed versions.

A ``DatasetVersion`` is identified by the SHA-256 of what it contains (every item's asset,
the terms version it was included under, its price and units, and the licence asked
for), so the same selection always names the same version, and a version never changes
once built. A withdrawal or a rebuild makes a new version; the old one stays readable
(licences refer to the version they were granted on).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = ["Dataset", "DatasetExclusion", "DatasetItem", "DatasetVersion"]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_org", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    created_by: Mapped[str] = mapped_column(String(80))  # the actor's audit reference
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The licence the dataset is for: every included asset's terms allow it.
    purpose: Mapped[str] = mapped_column(String(60))
    territory: Mapped[str] = mapped_column(String(2))
    term_days: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # What to select: catalogue filters ({"query": {...}}) or {"campaign_id": "cmp_…"}.
    selection: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    # The balance wanted: {"dimensions": [...], "shares": {"label": share}} or {}.
    targets: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    size: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: all eligible
    measure: Mapped[str] = mapped_column(String(10), default="items")  # items | units
    fill_shortfall: Mapped[bool] = mapped_column(Boolean, default=False)
    # "asking": each item at its owner's price; "pool": pool_minor split by contribution.
    pricing: Mapped[str] = mapped_column(String(10), default="asking")
    pool_minor: Mapped[int | None] = mapped_column(_BIG, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    latest_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (Index("ix_dataset_versions_dataset", "dataset_id", "number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # dsv_ + content hash
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    number: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str] = mapped_column(String(40))  # build | rebuild | withdrawal
    item_count: Mapped[int] = mapped_column(Integer)
    total_units: Mapped[float] = mapped_column(Float)
    subtotal_minor: Mapped[int] = mapped_column(_BIG)  # what the contributors ask, in total
    currency: Mapped[str] = mapped_column(String(3))
    representation: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    exclusions: Mapped[dict[str, int]] = mapped_column(JSONValue)  # count per code
    anonymity: Mapped[dict[str, Any]] = mapped_column(JSONValue)  # the k-anonymity report
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DatasetItem(Base):
    __tablename__ = "dataset_items"
    __table_args__ = (
        Index("ix_dataset_items_version", "version_id", "asset_id"),
        Index("ix_dataset_items_asset", "asset_id"),
    )

    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("dataset_versions.id"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    policy_id: Mapped[str] = mapped_column(ForeignKey("asset_policies.id"))
    receipt_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    modality: Mapped[str] = mapped_column(String(20))
    units: Mapped[float] = mapped_column(Float)
    price_minor: Mapped[int] = mapped_column(_BIG)
    stratum: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # What the buyer receives about the item: measurements and k-anonymised demographics.
    delivered: Mapped[dict[str, Any]] = mapped_column(JSONValue)


class DatasetExclusion(Base):
    """An asset the selection matched that the version does not contain, and why."""

    __tablename__ = "dataset_exclusions"
    __table_args__ = (Index("ix_dataset_exclusions_version", "version_id", "code"),)

    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("dataset_versions.id"))
    asset_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    rule_path: Mapped[str | None] = mapped_column(String(120), nullable=True)
