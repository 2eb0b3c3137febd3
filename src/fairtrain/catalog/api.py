"""The catalogue over HTTP: faceted search with licence compatibility, one item's terms,
and a redacted low-fidelity preview. Buyers and operators only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from fairtrain.catalog import service
from fairtrain.catalog.models import CatalogEntry
from fairtrain.catalog.policy import authorize_catalog_read
from fairtrain.catalog.preview import make_preview
from fairtrain.consent import purposes
from fairtrain.consent.fit import Fit, LicenceAsk
from fairtrain.consent.plain import explain, risk_notes
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import NotFound
from fairtrain.ids import utcnow
from fairtrain.ingest.models import Asset
from fairtrain.iris import org_iri
from fairtrain.money import check_currency
from fairtrain.scratch import spooled

__all__ = ["CatalogFilters", "CatalogItemOut", "CatalogParams", "licence_ask", "router"]

router = APIRouter(prefix="/api/v1", tags=["catalog"])

Modality = Literal["audio", "image", "video", "chat", "text", "document"]


# Free-text facet values: no control characters (PostgreSQL refuses NUL in text, and no
# facet value has one), so such a filter is a 422, not a database error.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class CatalogFilters(BaseModel):
    """What to select by (repeat a query parameter for "any of")."""

    model_config = ConfigDict(extra="forbid")

    modality: list[Modality] = Field(default_factory=list, max_length=10)
    language: list[Annotated[str, Field(max_length=16)]] = Field(
        default_factory=list, max_length=50
    )
    min_duration: float | None = Field(default=None, ge=0, description="Seconds.")
    max_duration: float | None = Field(default=None, ge=0, description="Seconds.")
    min_speech_share: float | None = Field(default=None, ge=0, le=1)
    min_snr_db: float | None = None
    min_sharpness: float | None = Field(default=None, ge=0)
    quality_ok: bool | None = None
    age_band: list[Annotated[str, Field(max_length=10, pattern=PRINTABLE)]] = Field(
        default_factory=list, max_length=20
    )
    gender: list[Annotated[str, Field(max_length=30, pattern=PRINTABLE)]] = Field(
        default_factory=list, max_length=20
    )
    region: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$|^not_shared$")]] = Field(
        default_factory=list, max_length=300
    )
    accent: list[Annotated[str, Field(max_length=80, pattern=PRINTABLE)]] = Field(
        default_factory=list, max_length=50
    )
    max_price_minor: int | None = Field(default=None, ge=0)

    def to_query(
        self, licence: LicenceAsk | None = None, sort: str = "newest"
    ) -> service.CatalogQuery:
        return service.CatalogQuery(
            modalities=tuple(self.modality),
            languages=tuple(self.language),
            min_duration=self.min_duration,
            max_duration=self.max_duration,
            min_speech_share=self.min_speech_share,
            min_snr_db=self.min_snr_db,
            min_sharpness=self.min_sharpness,
            quality_ok=self.quality_ok,
            age_bands=tuple(self.age_band),
            genders=tuple(self.gender),
            regions=tuple(self.region),
            accents=tuple(self.accent),
            max_price_minor=self.max_price_minor,
            licence=licence,
            sort=sort,
        )


class CatalogParams(CatalogFilters):
    """Filters, licence compatibility, sort and page."""

    purpose: str | None = Field(
        default=None, max_length=60, description="Only assets whose terms allow this purpose."
    )
    territory: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    term_days: int = Field(default=365, ge=1, le=3650)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    sort: Literal["newest", "oldest", "longest", "shortest", "cheapest"] = "newest"
    limit: int = Field(default=50, ge=1, le=service.MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=400)

    @model_validator(mode="after")
    def _licence_needs_purpose_and_place(self) -> CatalogParams:
        if (self.purpose is None) != (self.territory is None):
            raise ValueError("purpose and territory go together: a licence is for both")
        return self


def licence_ask(
    request: Request,
    *,
    purpose: str,
    territory: str,
    term_days: int,
    currency: str | None,
    org_id: str | None,
) -> LicenceAsk:
    """The licence a buyer's query or dataset asks for, starting now."""
    purposes.purpose(purpose)  # unknown_purpose, 422
    return LicenceAsk(
        purpose=purpose,
        territory=territory.upper(),
        term_days=term_days,
        currency=check_currency(currency) if currency else None,
        start=utcnow(),
        assignee=org_iri(request.app.state.settings, org_id) if org_id else None,
    )


class QualityOut(BaseModel):
    ok: bool
    speech_share: float | None
    snr_db: float | None
    sharpness: float | None


class TermsOut(BaseModel):
    price_minor: int | None
    currency: str | None
    term_days: int | None
    territories: list[str] | None  # None: anywhere
    ends_at: datetime | None
    exclusive: bool


class FitOut(BaseModel):
    ok: bool
    code: str | None
    reason: str | None


class CatalogItemOut(BaseModel):
    id: str
    modality: str
    media_type: str | None
    language: str | None
    duration_seconds: float | None
    messages: int | None
    pages: int | None
    quality: QualityOut
    terms: TermsOut
    listed_at: datetime
    fit: FitOut | None  # when the query asked for licence compatibility


class CatalogPageOut(BaseModel):
    items: list[CatalogItemOut]
    total: int
    total_duration_seconds: float
    facets: dict[str, dict[str, int]]
    next_cursor: str | None
    notes: list[str] = Field(description="What to know about this result, in words.")


class CatalogItemDetailOut(CatalogItemOut):
    explanation: list[str]
    risk_notes: list[str]


def item_out(entry: CatalogEntry, fit: Fit | None = None) -> CatalogItemOut:
    return CatalogItemOut(
        id=entry.asset_id,
        modality=entry.modality,
        media_type=entry.media_type,
        language=entry.language,
        duration_seconds=entry.duration_seconds,
        messages=entry.messages,
        pages=entry.pages,
        quality=QualityOut(
            ok=entry.quality_ok,
            speech_share=entry.speech_share,
            snr_db=entry.snr_db,
            sharpness=entry.sharpness,
        ),
        terms=TermsOut(
            price_minor=entry.price_minor,
            currency=entry.currency,
            term_days=entry.term_days,
            territories=entry.territories.strip(",").split(",") if entry.territories else None,
            ends_at=entry.not_after,
            exclusive=entry.exclusive,
        ),
        listed_at=entry.listed_at,
        fit=FitOut(ok=fit.ok, code=fit.code, reason=fit.reason) if fit else None,
    )


@router.get("/catalog", response_model=CatalogPageOut)
def search_catalog(
    params: Annotated[CatalogParams, Query()],
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> CatalogPageOut:
    """Listed assets matching the filters, with facet counts over the whole result.

    With ``purpose`` and ``territory`` only assets whose terms allow that licence (for
    ``term_days``, in ``currency`` when given) are returned.
    """
    org_id = authorize_catalog_read(principal)
    ask = None
    if params.purpose is not None and params.territory is not None:
        ask = licence_ask(
            request,
            purpose=params.purpose,
            territory=params.territory,
            term_days=params.term_days,
            currency=params.currency,
            org_id=org_id,
        )
    page = service.search(
        session,
        request.app.state.settings,
        params.to_query(ask, params.sort),
        limit=params.limit,
        cursor=params.cursor,
    )
    return CatalogPageOut(
        items=[item_out(entry, fit) for entry, fit in page.items],
        total=page.total,
        total_duration_seconds=page.total_duration_seconds,
        facets=page.facets,
        next_cursor=page.next_cursor,
        notes=page.notes,
    )


def _entry(session: Session, asset_id: str) -> CatalogEntry:
    entry = session.get(CatalogEntry, asset_id)
    if entry is None:
        raise NotFound("No such listed asset.", code="catalog_item_not_found")
    return entry


@router.get("/catalog/{asset_id}", response_model=CatalogItemDetailOut)
def read_catalog_item(
    asset_id: str, principal: PrincipalDep, session: SessionDep
) -> CatalogItemDetailOut:
    """One listed asset and its terms in plain words, as its owner set them."""
    authorize_catalog_read(principal)
    entry = _entry(session, asset_id)
    policy = service.policy_for(session, entry.policy_id)
    return CatalogItemDetailOut(
        **item_out(entry).model_dump(),
        explanation=explain(policy),
        risk_notes=risk_notes(policy, entry.modality),
    )


@router.get(
    "/catalog/{asset_id}/preview",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "audio/wav": {}, "text/plain": {}}}},
)
async def preview_catalog_item(
    asset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """A small, low-fidelity sample of the redacted version its owner approved."""
    authorize_catalog_read(principal)
    entry = _entry(session, asset_id)
    asset = session.get(Asset, asset_id)
    if asset is None or asset.redacted_blob_id is None:
        raise NotFound("No such listed asset.", code="catalog_item_not_found")
    blob_id = asset.redacted_blob_id
    scratch = request.app.state.settings.data_dir / "scratch"

    def render() -> tuple[bytes, str]:
        with spooled(request.app.state.open_blob(session, blob_id), scratch) as path:
            return make_preview(path, entry.modality)

    body, media_type = await anyio.to_thread.run_sync(render)
    return Response(
        body,
        media_type=media_type,
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )
