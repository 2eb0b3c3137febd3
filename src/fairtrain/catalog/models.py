"""The catalogue: one denormalised row per listed asset, and buyers' campaigns.

``CatalogEntry`` copies what a buyer may filter on (kind of data, language, duration,
quality, generalised demographics) and the asset's compiled terms, so a faceted search
over a million listed assets is one indexed query on one table. It is kept in step by
``catalog.service.sync_entry`` in the same transaction as every change it mirrors
(listing, withdrawal, erasure, new terms, a changed profile); it holds nothing a buyer
may not know except ``owner_id``, which never leaves the server.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = [
    "FACET_CELL",
    "FACET_MARGIN",
    "FACET_MARGIN_DIMENSIONS",
    "Campaign",
    "CampaignState",
    "CampaignSubmission",
    "CatalogEntry",
    "CatalogFacet",
    "CatalogFacetMargin",
    "SubmissionState",
]

_BIG = BigInteger().with_variant(Integer, "sqlite")


class CatalogEntry(Base):
    __tablename__ = "catalog_entries"
    __table_args__ = (
        # Keyset pagination (newest first) and the commonest filters.
        Index("ix_catalog_entries_listed", "listed_at", "asset_id"),
        # The commonest filter shape, covering: every column a discrete search filters
        # or sorts on is in the index, so the ids of a page are found by an index-only
        # scan of the (modality, language) range, whatever the planner thinks of the
        # demographic and licence predicates, and only the page's rows are read.
        Index(
            "ix_catalog_entries_modality_language",
            "modality",
            "language",
            "listed_at",
            "asset_id",
            postgresql_include=[
                "age_band",
                "gender",
                "region",
                "quality_ok",
                "exact",
                "permit_mask",
                "ban_mask",
                "territories",
                "not_after",
                "term_days",
                "price_minor",
                "currency",
                "duration_seconds",
                "cheapest_key",
                "longest_key",
                "shortest_key",
            ],
        ),
        Index("ix_catalog_entries_owner", "owner_id"),
        # Keyset pages in each sort order.
        Index("ix_catalog_entries_cheapest", "cheapest_key", "asset_id"),
        Index("ix_catalog_entries_longest", "longest_key", "asset_id"),
        Index("ix_catalog_entries_shortest", "shortest_key", "asset_id"),
        # Within one kind of data: photos and texts all sort last by duration, so
        # without these a page of them would be found after walking every recording.
        Index("ix_catalog_entries_modality_longest", "modality", "longest_key", "asset_id"),
        Index("ix_catalog_entries_modality_shortest", "modality", "shortest_key", "asset_id"),
        # The few entries whose terms the evaluator decides one by one.
        Index(
            "ix_catalog_entries_inexact",
            "asset_id",
            sqlite_where=text("NOT exact"),
            postgresql_where=text("NOT exact"),
        ),
    )

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    modality: Mapped[str] = mapped_column(String(20))
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)  # redacted
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    messages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Quality measurements (None where they do not apply) and "every score is fine".
    speech_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    snr_db: Mapped[float | None] = mapped_column(Float, nullable=True)
    sharpness: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_ok: Mapped[bool] = mapped_column(Boolean)
    # Self-declared, already generalised (accounts.demographics); None = not shared.
    age_band: Mapped[str | None] = mapped_column(String(10), nullable=True)
    gender: Mapped[str | None] = mapped_column(String(30), nullable=True)
    accent: Mapped[str | None] = mapped_column(String(80), nullable=True)
    region: Mapped[str | None] = mapped_column(String(2), nullable=True)
    # The current terms, compiled (consent.compile), copied from AssetPolicy.
    policy_id: Mapped[str] = mapped_column(ForeignKey("asset_policies.id"))
    permit_mask: Mapped[int] = mapped_column(_BIG)
    ban_mask: Mapped[int] = mapped_column(_BIG)
    territories: Mapped[str | None] = mapped_column(Text, nullable=True)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    term_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price_minor: Mapped[int | None] = mapped_column(_BIG, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    exclusive: Mapped[bool] = mapped_column(Boolean)
    exact: Mapped[bool] = mapped_column(Boolean)
    rules: Mapped[list[Any]] = mapped_column(JSONValue, default=list)
    # [[organisation id or None, purpose mask]] the contributor withdrew (withdrawal.
    # service): checked before the terms, for exact and inexact entries alike.
    withheld: Mapped[list[Any]] = mapped_column(JSONValue, default=list)
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The other sort orders of a search, as stored (generated) columns so that a page is
    # read from an index in order: no price sorts as free, no duration sorts last.
    cheapest_key: Mapped[int] = mapped_column(
        _BIG, Computed("coalesce(price_minor, 0)", persisted=True)
    )
    longest_key: Mapped[float] = mapped_column(
        Float, Computed("coalesce(duration_seconds, -1.0)", persisted=True)
    )
    shortest_key: Mapped[float] = mapped_column(
        Float, Computed("coalesce(duration_seconds, 1e18)", persisted=True)
    )


# What a facet count is grouped by: every discrete column a search may filter on without
# a threshold, and the compiled terms the licence filter reads (``price_minor`` only as
# "has a price"). A search filtering on these alone reads this table, not the entries.
FACET_CELL = (
    "modality",
    "language",
    "age_band",
    "gender",
    "region",
    "quality_ok",
    "exact",
    "permit_mask",
    "ban_mask",
    "territories",
    "not_after",
    "term_days",
    "currency",
    "priced",
)


class CatalogFacet(Base):
    """How many listed entries (and seconds of them) share one combination of the
    catalogue's discrete columns.

    Kept exact in the same transaction as every entry change (``catalog.service``), so
    facet counts over a million entries read a few thousand of these rows instead of
    every entry. ``cell`` is a digest of the combination (NULLs included, which a unique
    constraint over the columns would not treat as equal). ``fairtrain catalog
    check-facets`` compares it with a count over the entries.
    """

    __tablename__ = "catalog_facets"
    __table_args__ = (Index("ix_catalog_facets_modality_language", "modality", "language"),)

    cell: Mapped[str] = mapped_column(String(64), primary_key=True)
    modality: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    age_band: Mapped[str | None] = mapped_column(String(10), nullable=True)
    gender: Mapped[str | None] = mapped_column(String(30), nullable=True)
    region: Mapped[str | None] = mapped_column(String(2), nullable=True)
    quality_ok: Mapped[bool] = mapped_column(Boolean)
    exact: Mapped[bool] = mapped_column(Boolean)
    permit_mask: Mapped[int] = mapped_column(_BIG)
    ban_mask: Mapped[int] = mapped_column(_BIG)
    territories: Mapped[str | None] = mapped_column(Text, nullable=True)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    term_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    priced: Mapped[bool] = mapped_column(Boolean)
    entries: Mapped[int] = mapped_column(_BIG)
    # Milliseconds, summed as integers so that adding and removing entries is exact.
    duration_ms: Mapped[int] = mapped_column(_BIG)


# The demographics a margin counts one at a time, and what else a margin cell is keyed
# by: the cube's key without the demographic cross product.
FACET_MARGIN_DIMENSIONS = ("age_band", "gender", "region")
FACET_MARGIN = tuple(name for name in FACET_CELL if name not in FACET_MARGIN_DIMENSIONS)


class CatalogFacetMargin(Base):
    """The facet cube summed over all demographics but one: for each of age band,
    gender and region, how many listed entries (and seconds) share a value of it and one
    combination of :data:`FACET_MARGIN`.

    A search that filters on no demographic needs each demographic's counts only on its
    own, and the cube multiplies age band × gender × region: a licence-only search reads
    tens of thousands of cells there, a few thousand here. Kept exact with the cube, in
    the same transaction (``catalog.service``), and checked by ``check-facets``.
    """

    __tablename__ = "catalog_facet_margins"
    __table_args__ = (Index("ix_catalog_facet_margins_modality_language", "modality", "language"),)

    cell: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(10))  # one of FACET_MARGIN_DIMENSIONS
    value: Mapped[str | None] = mapped_column(String(30), nullable=True)
    modality: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    quality_ok: Mapped[bool] = mapped_column(Boolean)
    exact: Mapped[bool] = mapped_column(Boolean)
    permit_mask: Mapped[int] = mapped_column(_BIG)
    ban_mask: Mapped[int] = mapped_column(_BIG)
    territories: Mapped[str | None] = mapped_column(Text, nullable=True)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    term_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    priced: Mapped[bool] = mapped_column(Boolean)
    entries: Mapped[int] = mapped_column(_BIG)
    duration_ms: Mapped[int] = mapped_column(_BIG)


class CampaignState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # by the buyer, by its deadline, or when its quota is filled


class Campaign(Base):
    """A buyer's request: what data, for which purpose, at what price per unit, by when."""

    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_state_deadline", "state", "deadline"),
        Index("ix_campaigns_org", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    created_by: Mapped[str] = mapped_column(String(80))  # the actor's audit reference
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    modality: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    purpose: Mapped[str] = mapped_column(String(60))
    territory: Mapped[str] = mapped_column(String(2))
    term_days: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    price_per_unit_minor: Mapped[int] = mapped_column(_BIG)
    unit: Mapped[str] = mapped_column(String(20))  # minutes | items | messages | pages
    target_units: Mapped[float] = mapped_column(Float)
    accepted_units: Mapped[float] = mapped_column(Float, default=0.0)
    # Demographic balance wanted, e.g. {"dimensions": ["age_band"], "shares": {"18-24": 0.5}}.
    targets: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[CampaignState] = mapped_column(String(20))
    closed_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SubmissionState(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # by its contributor, before or after acceptance


class CampaignSubmission(Base):
    __tablename__ = "campaign_submissions"
    __table_args__ = (
        UniqueConstraint("campaign_id", "asset_id", name="uq_campaign_submissions_asset"),
        Index("ix_campaign_submissions_owner", "owner_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    units: Mapped[float] = mapped_column(Float)
    offered_minor: Mapped[int] = mapped_column(_BIG)  # the campaign's price for these units
    state: Mapped[SubmissionState] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
