"""Campaigns: a buyer asks for data ("50 hours of read English speech, balanced by age,
for speech recognition, at 0.30 EUR a minute, by March") and contributors answer with
their assets.

A submission is checked against the asset owner's own terms at the campaign's price
(``catalog.decide``): nobody can be talked into terms they did not choose. The buyer
accepts or rejects; accepted units count against the quota, which can never be
overfilled (the campaign row is locked while a submission is accepted). A campaign is
closed by its buyer, by its quota being filled, or by its deadline passing (deadlines are
enforced on every action; ``close_expired`` also records it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fairtrain.accounts.demographics import demographics_of
from fairtrain.accounts.models import ContributorProfile, User
from fairtrain.audit.service import append_event
from fairtrain.catalog import service as catalog
from fairtrain.catalog.models import (
    Campaign,
    CampaignState,
    CampaignSubmission,
    CatalogEntry,
    SubmissionState,
)
from fairtrain.config import DEFAULT_CONTRIBUTION_UNITS, Settings
from fairtrain.consent import purposes
from fairtrain.consent.fit import LicenceAsk
from fairtrain.datasets.sampling import parse_targets, stratum_label, targets_dict
from fairtrain.errors import Conflict, InvalidInput, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.iris import org_iri
from fairtrain.money import check_currency, format_money

__all__ = [
    "CAMPAIGN_DIMENSIONS",
    "CampaignView",
    "close_campaign",
    "close_expired",
    "create_campaign",
    "decide_submission",
    "eligibility",
    "get_campaign",
    "is_open",
    "list_for_contributor",
    "list_for_org",
    "offer_for",
    "qualifying_assets",
    "submissions_of",
    "submit_asset",
    "withdraw_submission",
]

CAMPAIGN_DIMENSIONS = ("age_band", "gender", "region", "accent", "language")
MODALITIES = tuple(DEFAULT_CONTRIBUTION_UNITS)
QUOTA_TOLERANCE = 1e-6


def is_open(campaign: Campaign, now: datetime) -> bool:
    return (
        CampaignState(campaign.state) == CampaignState.OPEN
        and now < campaign.deadline
        and campaign.accepted_units < campaign.target_units - QUOTA_TOLERANCE
    )


def _closed_reason(campaign: Campaign, now: datetime) -> str:
    if CampaignState(campaign.state) == CampaignState.CLOSED:
        return f"This campaign was closed ({campaign.closed_reason or 'by its buyer'})."
    if now >= campaign.deadline:
        return "This campaign's deadline has passed."
    return "This campaign has all the data it asked for."


def create_campaign(
    session: Session,
    settings: Settings,
    *,
    org_id: str,
    created_by: str,
    actor: str,
    title: str,
    description: str,
    modality: str,
    language: str | None,
    purpose: str,
    territory: str,
    term_days: int,
    currency: str,
    price_per_unit_minor: int,
    target_units: float,
    targets: Mapping[str, Any] | None,
    deadline: datetime,
) -> Campaign:
    now = utcnow()
    purposes.purpose(purpose)
    currency = check_currency(currency)
    if modality not in MODALITIES:
        raise InvalidInput(
            f"A campaign asks for one of: {', '.join(MODALITIES)}.",
            code="invalid_modality",
            pointer="/modality",
        )
    if price_per_unit_minor < max(1, settings.minimum_price_minor):
        raise InvalidInput(
            "A campaign pays at least "
            f"{format_money(max(1, settings.minimum_price_minor), currency)} per unit.",
            code="price_below_minimum",
            pointer="/price_per_unit_minor",
        )
    if target_units <= 0:
        raise InvalidInput(
            "A campaign asks for more than zero units.",
            code="invalid_quota",
            pointer="/target_units",
        )
    if deadline <= now:
        raise InvalidInput(
            "The deadline must be in the future.", code="deadline_in_past", pointer="/deadline"
        )
    try:
        parsed = parse_targets(targets, CAMPAIGN_DIMENSIONS)
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            f"These targets cannot be used: {error}.", code="invalid_targets", pointer="/targets"
        ) from None
    campaign = Campaign(
        id=new_id("cmp"),
        org_id=org_id,
        created_by=created_by,
        title=" ".join(title.split()),
        description=description.strip(),
        modality=modality,
        language=language,
        purpose=purpose,
        territory=territory.upper(),
        term_days=term_days,
        currency=currency,
        price_per_unit_minor=price_per_unit_minor,
        unit=str(settings.contribution_units[modality]),
        target_units=float(target_units),
        accepted_units=0.0,
        targets=targets_dict(parsed),
        deadline=deadline,
        state=CampaignState.OPEN,
        created_at=now,
    )
    session.add(campaign)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="campaign.created",
        subject=f"campaign:{campaign.id}",
        payload={"org": org_id, "purpose": purpose, "modality": modality,
                 "price_per_unit_minor": price_per_unit_minor, "currency": currency,
                 "target_units": target_units, "deadline": deadline.isoformat()},
    )  # fmt: skip
    return campaign


def get_campaign(session: Session, campaign_id: str, *, lock: bool = False) -> Campaign:
    campaign = session.get(Campaign, campaign_id, with_for_update=lock)
    if campaign is None:
        raise NotFound("No such campaign.", code="campaign_not_found")
    return campaign


def list_for_org(session: Session, org_id: str) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign).where(Campaign.org_id == org_id).order_by(Campaign.created_at.desc())
        )
    )


def _demographics(session: Session, user_id: str, today: date) -> dict[str, str | None]:
    user = session.get(User, user_id)
    assert user is not None
    shown = demographics_of(user, session.get(ContributorProfile, user_id), today)
    return {
        "age_band": shown.age_band,
        "gender": shown.gender,
        "region": shown.region,
        "accent": shown.accent,
        "language": None,  # per asset, not per person: checked on submission
    }


def eligibility(session: Session, campaign: Campaign, user_id: str, now: datetime) -> str | None:
    """None when the contributor may answer the campaign; else the sentence why not."""
    if not is_open(campaign, now):
        return _closed_reason(campaign, now)
    targets = parse_targets(campaign.targets, CAMPAIGN_DIMENSIONS)
    person = [d for d in targets.dimensions if d != "language"] if targets else []
    if not targets or not person:
        return None
    values = _demographics(session, user_id, now.date())
    label_of = {d: i for i, d in enumerate(targets.dimensions)}
    for label, share in targets.shares.items():
        parts = label.split("|")
        if share > 0 and all(stratum_label([values[d]]) == parts[label_of[d]] for d in person):
            return None
    return (
        "This campaign balances its data by "
        + ", ".join(d.replace("_", " ") for d in person)
        + "; what you share in your profile is not one of the groups it asks for."
    )


@dataclass(frozen=True, slots=True)
class CampaignView:
    campaign: Campaign
    eligible: bool
    reason: str | None
    qualifying: tuple[str, ...]  # the contributor's assets that may be submitted


def _ask(settings: Settings, campaign: Campaign, now: datetime) -> LicenceAsk:
    return LicenceAsk(
        purpose=campaign.purpose,
        territory=campaign.territory,
        term_days=campaign.term_days,
        currency=campaign.currency,
        start=now,
        assignee=org_iri(settings, campaign.org_id),
    )


def offer_for(campaign: Campaign, units: float) -> int:
    """What the campaign pays for ``units``, in minor units (half a cent and up rounds up)."""
    return int(campaign.price_per_unit_minor * units + 0.5)


def _check_asset(
    session: Session, settings: Settings, campaign: Campaign, entry: CatalogEntry, now: datetime
) -> tuple[float, int]:
    """(units, offer) for a listed asset this campaign may take; InvalidInput otherwise."""
    if entry.modality != campaign.modality:
        raise InvalidInput(
            f"This campaign asks for {campaign.modality}, not {entry.modality}.",
            code="wrong_modality",
            pointer="/asset_id",
        )
    if (
        campaign.language
        and (entry.language or "").split("-")[0] != campaign.language.split("-")[0]
    ):
        raise InvalidInput(
            f"This campaign asks for data in '{campaign.language}'.",
            code="wrong_language",
            pointer="/asset_id",
        )
    units = catalog.units_of(settings, entry)
    if units <= 0:
        raise InvalidInput("This asset has no measurable length.", code="no_units")
    offer = offer_for(campaign, units)
    fit = catalog.decide(
        session, settings, entry, _ask(settings, campaign, now), offered_minor=offer
    )
    if not fit.ok:
        raise InvalidInput(
            f"Your terms for this asset do not allow this campaign: {fit.reason}",
            code="terms_do_not_allow",
            pointer="/asset_id",
            extra={"fit_code": fit.code},
        )
    return units, offer


def qualifying_assets(
    session: Session, settings: Settings, campaign: Campaign, owner_id: str, now: datetime
) -> list[str]:
    """The contributor's listed assets this campaign could take, not yet submitted."""
    submitted = set(
        session.scalars(
            select(CampaignSubmission.asset_id).where(
                CampaignSubmission.campaign_id == campaign.id,
                CampaignSubmission.owner_id == owner_id,
            )
        )
    )
    found: list[str] = []
    entries = session.scalars(
        select(CatalogEntry).where(
            CatalogEntry.owner_id == owner_id, CatalogEntry.modality == campaign.modality
        )
    )
    for entry in entries:
        if entry.asset_id in submitted:
            continue
        try:
            _check_asset(session, settings, campaign, entry, now)
        except InvalidInput:
            continue
        found.append(entry.asset_id)
    return found


def list_for_contributor(
    session: Session, settings: Settings, user_id: str, *, limit: int = 100
) -> list[CampaignView]:
    """Open campaigns, each with whether the contributor may answer and with what."""
    now = utcnow()
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.state == CampaignState.OPEN, Campaign.deadline > now)
        .order_by(Campaign.deadline)
        .limit(limit)
    )
    views: list[CampaignView] = []
    for campaign in campaigns:
        reason = eligibility(session, campaign, user_id, now)
        qualifying = (
            tuple(qualifying_assets(session, settings, campaign, user_id, now))
            if reason is None
            else ()
        )
        views.append(CampaignView(campaign, reason is None, reason, qualifying))
    return views


def submit_asset(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    *,
    asset_id: str,
    owner_id: str,
    actor: str,
) -> CampaignSubmission:
    now = utcnow()
    reason = eligibility(session, campaign, owner_id, now)
    if reason is not None:
        if not is_open(campaign, now):
            raise Conflict(reason, code="campaign_closed")
        raise InvalidInput(reason, code="not_eligible")
    entry = session.get(CatalogEntry, asset_id)
    if entry is None or entry.owner_id != owner_id:
        raise NotFound("You have no listed asset with this id.", code="asset_not_found")
    units, offer = _check_asset(session, settings, campaign, entry, now)
    submission = CampaignSubmission(
        id=new_id("sub"),
        campaign_id=campaign.id,
        asset_id=asset_id,
        owner_id=owner_id,
        units=units,
        offered_minor=offer,
        state=SubmissionState.SUBMITTED,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(submission)
            session.flush()
    except IntegrityError:
        raise Conflict(
            "This asset was already submitted to this campaign.", code="already_submitted"
        ) from None
    append_event(
        session,
        actor=actor,
        action="campaign.submission_made",
        subject=f"campaign:{campaign.id}",
        payload={"submission": submission.id, "asset": asset_id, "units": units,
                 "offered_minor": offer},
    )  # fmt: skip
    return submission


def submissions_of(
    session: Session, *, campaign_id: str | None = None, owner_id: str | None = None
) -> list[CampaignSubmission]:
    query = select(CampaignSubmission)
    if campaign_id is not None:
        query = query.where(CampaignSubmission.campaign_id == campaign_id)
    if owner_id is not None:
        query = query.where(CampaignSubmission.owner_id == owner_id)
    return list(session.scalars(query.order_by(CampaignSubmission.created_at)))


def _submission(session: Session, campaign: Campaign, submission_id: str) -> CampaignSubmission:
    submission = session.get(CampaignSubmission, submission_id)
    if submission is None or submission.campaign_id != campaign.id:
        raise NotFound("No such submission.", code="submission_not_found")
    return submission


def decide_submission(
    session: Session,
    settings: Settings,
    campaign_id: str,
    submission_id: str,
    *,
    accept: bool,
    actor: str,
    reason: str | None = None,
) -> CampaignSubmission:
    """Accept (counting against the quota, never past it) or reject a submission."""
    now = utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    submission = _submission(session, campaign, submission_id)
    if SubmissionState(submission.state) != SubmissionState.SUBMITTED:
        raise Conflict(f"This submission is already {submission.state}.", code="submission_decided")
    if accept:
        if not is_open(campaign, now):
            raise Conflict(_closed_reason(campaign, now), code="campaign_closed")
        entry = session.get(CatalogEntry, submission.asset_id)
        if entry is None:
            raise Conflict("This asset is no longer listed.", code="asset_not_listed")
        _check_asset(session, settings, campaign, entry, now)  # terms may have changed
        if campaign.accepted_units + submission.units > campaign.target_units + QUOTA_TOLERANCE:
            left = campaign.target_units - campaign.accepted_units
            raise Conflict(
                f"Accepting it would pass the quota: {left:g} {campaign.unit} are left and it "
                f"brings {submission.units:g}.",
                code="quota_full",
            )
        campaign.accepted_units += submission.units
    submission.state = SubmissionState.ACCEPTED if accept else SubmissionState.REJECTED
    submission.reason = reason
    submission.decided_at = now
    session.flush()
    append_event(
        session,
        actor=actor,
        action="campaign.submission_accepted" if accept else "campaign.submission_rejected",
        subject=f"campaign:{campaign.id}",
        payload={"submission": submission.id, "asset": submission.asset_id,
                 "accepted_units": campaign.accepted_units},
    )  # fmt: skip
    if accept and campaign.accepted_units >= campaign.target_units - QUOTA_TOLERANCE:
        _close(session, campaign, "quota_filled", actor=actor, now=now)
    return submission


def withdraw_submission(
    session: Session, campaign_id: str, submission_id: str, *, owner_id: str, actor: str
) -> CampaignSubmission:
    campaign = get_campaign(session, campaign_id, lock=True)
    submission = _submission(session, campaign, submission_id)
    if submission.owner_id != owner_id:
        raise NotFound("No such submission.", code="submission_not_found")
    state = SubmissionState(submission.state)
    if state in (SubmissionState.WITHDRAWN, SubmissionState.REJECTED):
        return submission
    if state == SubmissionState.ACCEPTED:
        campaign.accepted_units = max(0.0, campaign.accepted_units - submission.units)
    submission.state = SubmissionState.WITHDRAWN
    submission.decided_at = utcnow()
    session.flush()
    append_event(
        session,
        actor=actor,
        action="campaign.submission_withdrawn",
        subject=f"campaign:{campaign.id}",
        payload={"submission": submission.id, "asset": submission.asset_id, "was": state.value},
    )
    return submission


def _close(session: Session, campaign: Campaign, why: str, *, actor: str, now: datetime) -> None:
    campaign.state = CampaignState.CLOSED
    campaign.closed_reason = why
    campaign.closed_at = now
    session.flush()
    append_event(
        session,
        actor=actor,
        action="campaign.closed",
        subject=f"campaign:{campaign.id}",
        payload={"reason": why, "accepted_units": campaign.accepted_units},
    )


def close_campaign(session: Session, campaign: Campaign, *, actor: str) -> Campaign:
    if CampaignState(campaign.state) == CampaignState.CLOSED:
        return campaign
    _close(session, campaign, "closed_by_buyer", actor=actor, now=utcnow())
    return campaign


def close_expired(session: Session, *, actor: str, now: datetime | None = None) -> Sequence[str]:
    """Record the closing of every open campaign whose deadline has passed."""
    now = now or utcnow()
    expired = list(
        session.scalars(
            select(Campaign).where(Campaign.state == CampaignState.OPEN, Campaign.deadline <= now)
        )
    )
    for campaign in expired:
        _close(session, campaign, "deadline_passed", actor=actor, now=now)
    return [c.id for c in expired]
