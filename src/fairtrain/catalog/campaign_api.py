"""Campaigns over HTTP: buyers post and decide; contributors see what they may answer,
submit their own listed assets and withdraw them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.catalog import campaigns as service
from fairtrain.catalog.models import Campaign, CampaignSubmission
from fairtrain.catalog.policy import BuyerAction, authorize_buyer, authorize_contributor
from fairtrain.consent import purposes
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import AuthenticationRequired, NotFound
from fairtrain.ids import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["campaigns"])


class CampaignTargetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimensions: list[Literal["age_band", "gender", "region", "accent", "language"]]
    shares: dict[Annotated[str, Field(max_length=200)], float] = Field(max_length=500)


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=5000)
    modality: Literal["audio", "image", "video", "chat", "text", "document"]
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")
    purpose: str = Field(max_length=60)
    territory: str = Field(pattern=r"^[A-Za-z]{2}$")
    term_days: int = Field(default=365, ge=1, le=3650)
    currency: str = Field(default="EUR", pattern=r"^[A-Za-z]{3}$")
    price_per_unit_minor: int = Field(
        ge=0, le=10**9, description="Paid per unit: a minute of audio or video, a photo, …"
    )
    target_units: float = Field(gt=0, le=10**9)
    targets: CampaignTargetsIn | None = None
    deadline: datetime


class CampaignOut(BaseModel):
    id: str
    title: str
    description: str
    modality: str
    language: str | None
    purpose: str
    purpose_words: str
    territory: str
    term_days: int
    currency: str
    price_per_unit_minor: int
    unit: str
    target_units: float
    accepted_units: float
    targets: dict[str, Any]
    deadline: datetime
    state: str
    open: bool
    closed_reason: str | None
    created_at: datetime


class ContributorCampaignOut(CampaignOut):
    eligible: bool
    reason: str | None  # why not, when not eligible
    qualifying_assets: list[str]


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset_id: str = Field(max_length=40)


class SubmissionOut(BaseModel):
    id: str
    campaign_id: str
    asset_id: str
    units: float
    offered_minor: int
    state: str
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        title=campaign.title,
        description=campaign.description,
        modality=campaign.modality,
        language=campaign.language,
        purpose=campaign.purpose,
        purpose_words=purposes.PURPOSES[campaign.purpose].words,
        territory=campaign.territory,
        term_days=campaign.term_days,
        currency=campaign.currency,
        price_per_unit_minor=campaign.price_per_unit_minor,
        unit=campaign.unit,
        target_units=campaign.target_units,
        accepted_units=campaign.accepted_units,
        targets=campaign.targets,
        deadline=campaign.deadline,
        state=campaign.state,
        open=service.is_open(campaign, utcnow()),
        closed_reason=campaign.closed_reason,
        created_at=campaign.created_at,
    )


def submission_out(submission: CampaignSubmission) -> SubmissionOut:
    return SubmissionOut(
        id=submission.id,
        campaign_id=submission.campaign_id,
        asset_id=submission.asset_id,
        units=submission.units,
        offered_minor=submission.offered_minor,
        state=submission.state,
        reason=submission.reason,
        created_at=submission.created_at,
        decided_at=submission.decided_at,
    )


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
def create_campaign(
    body: CampaignIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> CampaignOut:
    """Ask contributors for data: what, for which purpose, at what price, by when."""
    org_id = authorize_buyer(principal, BuyerAction.CAMPAIGNS_WRITE)
    campaign = service.create_campaign(
        session,
        request.app.state.settings,
        org_id=org_id,
        created_by=principal.ref,
        actor=principal.ref,
        title=body.title,
        description=body.description,
        modality=body.modality,
        language=body.language,
        purpose=body.purpose,
        territory=body.territory,
        term_days=body.term_days,
        currency=body.currency,
        price_per_unit_minor=body.price_per_unit_minor,
        target_units=body.target_units,
        targets=body.targets.model_dump() if body.targets else None,
        deadline=body.deadline,
    )
    return campaign_out(campaign)


@router.get("/campaigns", response_model=list[ContributorCampaignOut] | list[CampaignOut])
def list_campaigns(
    request: Request, principal: PrincipalDep, session: SessionDep
) -> list[ContributorCampaignOut] | list[CampaignOut]:
    """Contributors: open campaigns, whether you may answer, and which of your assets
    qualify. Buyers: your organisation's campaigns."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    if principal.kind == UserKind.CONTRIBUTOR:
        user_id = authorize_contributor(principal)
        views = service.list_for_contributor(session, request.app.state.settings, user_id)
        return [
            ContributorCampaignOut(
                **campaign_out(v.campaign).model_dump(),
                eligible=v.eligible,
                reason=v.reason,
                qualifying_assets=list(v.qualifying),
            )
            for v in views
        ]
    org_id = authorize_buyer(principal, BuyerAction.CAMPAIGNS_WRITE)
    return [campaign_out(c) for c in service.list_for_org(session, org_id)]


def _buyers_campaign(principal: Principal, session: Session, campaign_id: str) -> Campaign:
    try:
        campaign = service.get_campaign(session, campaign_id)
        authorize_buyer(principal, BuyerAction.CAMPAIGNS_WRITE, campaign.org_id)
    except NotFound:
        raise NotFound("No such campaign.", code="campaign_not_found") from None
    return campaign


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def read_campaign(campaign_id: str, principal: PrincipalDep, session: SessionDep) -> CampaignOut:
    """Its buyer reads it; contributors read open ones (or ones they answered)."""
    if principal.kind == UserKind.CONTRIBUTOR:
        user_id = authorize_contributor(principal)
        campaign = service.get_campaign(session, campaign_id)
        answered = any(
            s.owner_id == user_id for s in service.submissions_of(session, campaign_id=campaign.id)
        )
        if not answered and not service.is_open(campaign, utcnow()):
            raise NotFound("No such campaign.", code="campaign_not_found")
        return campaign_out(campaign)
    return campaign_out(_buyers_campaign(principal, session, campaign_id))


@router.post("/campaigns/{campaign_id}/close", response_model=CampaignOut)
def close_campaign(campaign_id: str, principal: PrincipalDep, session: SessionDep) -> CampaignOut:
    campaign = _buyers_campaign(principal, session, campaign_id)
    return campaign_out(service.close_campaign(session, campaign, actor=principal.ref))


@router.get("/campaigns/{campaign_id}/submissions", response_model=list[SubmissionOut])
def list_submissions(
    campaign_id: str, principal: PrincipalDep, session: SessionDep
) -> list[SubmissionOut]:
    """What contributors offered: assets, units and price (never who they are)."""
    campaign = _buyers_campaign(principal, session, campaign_id)
    return [submission_out(s) for s in service.submissions_of(session, campaign_id=campaign.id)]


@router.post("/campaigns/{campaign_id}/submissions", response_model=SubmissionOut, status_code=201)
def submit(
    campaign_id: str,
    body: SubmissionIn,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> SubmissionOut:
    """Offer one of your listed assets; your own terms must allow the campaign."""
    user_id = authorize_contributor(principal)
    campaign = service.get_campaign(session, campaign_id)
    submission = service.submit_asset(
        session,
        request.app.state.settings,
        campaign,
        asset_id=body.asset_id,
        owner_id=user_id,
        actor=principal.ref,
    )
    return submission_out(submission)


def _decide(
    campaign_id: str,
    submission_id: str,
    accept: bool,
    body: DecisionIn | None,
    request: Request,
    principal: Principal,
    session: Session,
) -> SubmissionOut:
    _buyers_campaign(principal, session, campaign_id)
    submission = service.decide_submission(
        session,
        request.app.state.settings,
        campaign_id,
        submission_id,
        accept=accept,
        actor=principal.ref,
        reason=body.reason if body else None,
    )
    return submission_out(submission)


@router.post(
    "/campaigns/{campaign_id}/submissions/{submission_id}/accept", response_model=SubmissionOut
)
def accept_submission(
    campaign_id: str,
    submission_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    body: DecisionIn | None = None,
) -> SubmissionOut:
    return _decide(campaign_id, submission_id, True, body, request, principal, session)


@router.post(
    "/campaigns/{campaign_id}/submissions/{submission_id}/reject", response_model=SubmissionOut
)
def reject_submission(
    campaign_id: str,
    submission_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    body: DecisionIn | None = None,
) -> SubmissionOut:
    return _decide(campaign_id, submission_id, False, body, request, principal, session)


@router.delete("/campaigns/{campaign_id}/submissions/{submission_id}", response_model=SubmissionOut)
def withdraw_submission(
    campaign_id: str, submission_id: str, principal: PrincipalDep, session: SessionDep
) -> SubmissionOut:
    """Take your asset back out of a campaign (its already-built datasets keep their
    versions; withdraw the asset itself to reach them)."""
    user_id = authorize_contributor(principal)
    submission = service.withdraw_submission(
        session, campaign_id, submission_id, owner_id=user_id, actor=principal.ref
    )
    return submission_out(submission)


@router.get("/me/submissions", response_model=list[SubmissionOut])
def my_submissions(principal: PrincipalDep, session: SessionDep) -> list[SubmissionOut]:
    user_id = authorize_contributor(principal)
    return [submission_out(s) for s in service.submissions_of(session, owner_id=user_id)]
