"""Datasets over HTTP: define one, build versions, read a version's representation report,
its items (what the buyer will receive about each) and every exclusion with its reason.

All of it belongs to one buyer organisation (another organisation's dataset is reported
as missing); operators read, to settle disputes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.catalog.api import CatalogFilters
from fairtrain.catalog.policy import BuyerAction, authorize_buyer
from fairtrain.datasets import service
from fairtrain.datasets.models import Dataset, DatasetVersion
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import AuthenticationRequired, InvalidInput, NotFound

__all__ = ["router", "version_out"]

router = APIRouter(prefix="/api/v1", tags=["datasets"])


class SelectionIn(CatalogFilters):
    """Catalogue filters (as ``GET /api/v1/catalog`` takes them), or a campaign."""

    campaign_id: str | None = Field(default=None, max_length=40)


class TargetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimensions: list[Literal["age_band", "gender", "region", "accent", "language", "modality"]]
    shares: dict[Annotated[str, Field(max_length=200)], float] = Field(max_length=500)


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    purpose: str = Field(max_length=60, description="A purpose key: GET /api/v1/purposes.")
    territory: str = Field(pattern=r"^[A-Za-z]{2}$", description="Where the data will be used.")
    term_days: int = Field(default=365, ge=1, le=3650, description="How long the licence lasts.")
    currency: str = Field(default="EUR", pattern=r"^[A-Za-z]{3}$")
    selection: SelectionIn = Field(default_factory=SelectionIn)
    targets: TargetsIn | None = None
    size: float | None = Field(default=None, gt=0, description="Items or units; all if absent.")
    measure: Literal["items", "units"] = "items"
    fill_shortfall: bool = False
    pool_minor: int | None = Field(
        default=None,
        ge=1,
        description="Price the whole dataset: this total for the contributors, split "
        "between items by contribution (minutes, photos, messages, pages); items whose "
        "share would be below their owner's price are left out.",
    )


class ExclusionCountOut(BaseModel):
    code: str
    count: int


class VersionOut(BaseModel):
    id: str
    dataset_id: str
    number: int
    content_sha256: str
    parent_id: str | None
    reason: str
    item_count: int
    total_units: float
    subtotal_minor: int
    currency: str
    representation: dict[str, Any]
    exclusions: dict[str, int]
    anonymity: dict[str, Any]
    created_at: datetime
    superseded_at: datetime | None


class DatasetOut(BaseModel):
    id: str
    name: str
    description: str
    purpose: str
    territory: str
    term_days: int
    currency: str
    selection: dict[str, Any]
    targets: dict[str, Any]
    size: float | None
    measure: str
    pricing: str
    pool_minor: int | None
    created_at: datetime
    latest_version: VersionOut | None


class ItemOut(BaseModel):
    asset_id: str
    modality: str
    units: float
    price_minor: int
    stratum: str | None
    receipt_sha256: str | None
    delivered: dict[str, Any]


class ExclusionOut(BaseModel):
    asset_id: str
    code: str
    reason: str
    rule_path: str | None


def version_out(version: DatasetVersion) -> VersionOut:
    return VersionOut(
        id=version.id,
        dataset_id=version.dataset_id,
        number=version.number,
        content_sha256=version.content_sha256,
        parent_id=version.parent_id,
        reason=version.reason,
        item_count=version.item_count,
        total_units=version.total_units,
        subtotal_minor=version.subtotal_minor,
        currency=version.currency,
        representation=version.representation,
        exclusions=version.exclusions,
        anonymity=version.anonymity,
        created_at=version.created_at,
        superseded_at=version.superseded_at,
    )


def _dataset_out(session: Session, dataset: Dataset) -> DatasetOut:
    latest = (
        session.get(DatasetVersion, dataset.latest_version_id)
        if dataset.latest_version_id
        else None
    )
    return DatasetOut(
        id=dataset.id,
        name=dataset.name,
        description=dataset.description,
        purpose=dataset.purpose,
        territory=dataset.territory,
        term_days=dataset.term_days,
        currency=dataset.currency,
        selection=dataset.selection,
        targets=dataset.targets,
        size=dataset.size,
        measure=dataset.measure,
        pricing=dataset.pricing,
        pool_minor=dataset.pool_minor,
        created_at=dataset.created_at,
        latest_version=version_out(latest) if latest else None,
    )


def _readable(principal: Principal, dataset: Dataset) -> None:
    """The owning organisation reads (by session or a datasets key); operators read."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    if principal.kind == UserKind.OPERATOR and principal.via == "session":
        return
    authorize_buyer(principal, BuyerAction.DATASETS_WRITE, dataset.org_id)


@router.post("/datasets", response_model=DatasetOut, status_code=201)
def create_dataset(
    body: DatasetIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> DatasetOut:
    """Define a dataset and build its first version at once."""
    org_id = authorize_buyer(principal, BuyerAction.DATASETS_WRITE)
    settings = request.app.state.settings
    campaign_id = body.selection.campaign_id
    filters = body.selection.to_query()
    if campaign_id is not None and body.selection.model_dump(
        exclude={"campaign_id"}, exclude_defaults=True
    ):
        raise InvalidInput(
            "Select assets either by catalogue filters or by a campaign, not both.",
            code="invalid_selection",
            pointer="/selection",
        )
    dataset = service.create_dataset(
        session,
        settings,
        org_id=org_id,
        actor=principal.ref,
        name=body.name,
        description=body.description,
        purpose=body.purpose,
        territory=body.territory,
        term_days=body.term_days,
        currency=body.currency,
        query=None if campaign_id else filters,
        campaign_id=campaign_id,
        targets=body.targets.model_dump() if body.targets else None,
        size=body.size,
        measure=body.measure,
        fill_shortfall=body.fill_shortfall,
        pool_minor=body.pool_minor,
    )
    service.build_version(session, settings, dataset, actor=principal.ref)
    return _dataset_out(session, dataset)


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets(principal: PrincipalDep, session: SessionDep) -> list[DatasetOut]:
    org_id = authorize_buyer(principal, BuyerAction.DATASETS_WRITE)
    return [_dataset_out(session, d) for d in service.list_datasets(session, org_id)]


@router.get("/datasets/{dataset_id}", response_model=DatasetOut)
def read_dataset(dataset_id: str, principal: PrincipalDep, session: SessionDep) -> DatasetOut:
    dataset = _owned(principal, session, dataset_id)
    return _dataset_out(session, dataset)


def _owned(principal: Principal, session: Session, dataset_id: str) -> Dataset:
    try:
        dataset = service.get_dataset(session, dataset_id)
        _readable(principal, dataset)
    except NotFound:
        raise NotFound("No such dataset.", code="dataset_not_found") from None
    return dataset


@router.post("/datasets/{dataset_id}/versions", response_model=VersionOut)
def rebuild_dataset(
    dataset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> VersionOut:
    """Build the selection again as the catalogue is now: a new version if anything
    changed, else the current one."""
    dataset = _owned(principal, session, dataset_id)
    authorize_buyer(principal, BuyerAction.DATASETS_WRITE, dataset.org_id)
    result = service.build_version(
        session, request.app.state.settings, dataset, actor=principal.ref, reason="rebuild"
    )
    return version_out(result.version)


@router.get("/datasets/{dataset_id}/versions", response_model=list[VersionOut])
def list_versions(
    dataset_id: str, principal: PrincipalDep, session: SessionDep
) -> list[VersionOut]:
    dataset = _owned(principal, session, dataset_id)
    return [version_out(v) for v in service.versions_of(session, dataset.id)]


def _version(principal: Principal, session: Session, version_id: str) -> DatasetVersion:
    try:
        version, dataset = service.get_version(session, version_id)
        _readable(principal, dataset)
    except NotFound:
        raise NotFound("No such dataset version.", code="dataset_version_not_found") from None
    return version


@router.get("/dataset-versions/{version_id}", response_model=VersionOut)
def read_version(version_id: str, principal: PrincipalDep, session: SessionDep) -> VersionOut:
    return version_out(_version(principal, session, version_id))


After = Annotated[str | None, Query(max_length=40, description="The last asset id seen.")]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/dataset-versions/{version_id}/items", response_model=list[ItemOut])
def list_items(
    version_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    after: After = None,
    limit: Limit = 500,
) -> list[ItemOut]:
    """What the version contains and what the buyer receives about each item."""
    version = _version(principal, session, version_id)
    return [
        ItemOut(
            asset_id=i.asset_id,
            modality=i.modality,
            units=i.units,
            price_minor=i.price_minor,
            stratum=i.stratum,
            receipt_sha256=i.receipt_sha256,
            delivered=i.delivered,
        )
        for i in service.version_items(session, version.id, after=after, limit=limit)
    ]


@router.get("/dataset-versions/{version_id}/exclusions", response_model=list[ExclusionOut])
def list_exclusions(
    version_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    code: Annotated[str | None, Query(max_length=40)] = None,
    after: After = None,
    limit: Limit = 500,
) -> list[ExclusionOut]:
    """Every asset the selection matched that the version left out, and why."""
    version = _version(principal, session, version_id)
    return [
        ExclusionOut(asset_id=x.asset_id, code=x.code, reason=x.reason, rule_path=x.rule_path)
        for x in service.version_exclusions(
            session, version.id, code=code, after=after, limit=limit
        )
    ]
