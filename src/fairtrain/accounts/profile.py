"""Contributor demographics: optional, self-declared, generalised before they are stored.

Buyers balance datasets by these, so they matter; they are also quasi-identifiers, so
only bands and coarse values exist here, and delivered metadata is k-anonymised again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from fairtrain.accounts.models import ContributorProfile, User, UserKind
from fairtrain.audit.service import append_event
from fairtrain.errors import Forbidden, InvalidInput, NotFound
from fairtrain.ids import utcnow

__all__ = [
    "AGE_BANDS",
    "GENDERS",
    "Demographics",
    "age_band",
    "demographics_of",
    "get_profile",
    "update_profile",
]

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("woman", "man", "non-binary", "another")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")


def age_band(born: date, today: date) -> str:
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    for band in AGE_BANDS[:-1]:
        low, high = (int(x) for x in band.split("-"))
        if low <= age <= high:
            return band
    return AGE_BANDS[-1]


@dataclass(frozen=True, slots=True)
class Demographics:
    """What a buyer may see of a contributor, already generalised."""

    age_band: str | None
    gender: str | None
    accent: str | None
    region: str | None
    languages: tuple[str, ...]


def get_profile(session: Session, user_id: str) -> ContributorProfile:
    user = session.get(User, user_id)
    if user is None or user.kind != UserKind.CONTRIBUTOR:
        raise NotFound("No such contributor.", code="contributor_not_found")
    profile = session.get(ContributorProfile, user_id)
    if profile is None:
        profile = ContributorProfile(
            user_id=user_id,
            share_age_band=False,
            share_region=False,
            languages=[],
            updated_at=utcnow(),
        )
    return profile


def update_profile(
    session: Session,
    user_id: str,
    *,
    share_age_band: bool,
    gender: str | None,
    accent: str | None,
    share_region: bool,
    languages: list[str],
) -> ContributorProfile:
    user = session.get(User, user_id)
    if user is None or user.kind != UserKind.CONTRIBUTOR:
        raise Forbidden("Only contributors have a demographic profile.", code="role_forbidden")
    if gender is not None and gender not in GENDERS:
        raise InvalidInput(
            f"Gender is optional; when given it is one of: {', '.join(GENDERS)}.",
            code="invalid_gender",
            pointer="/gender",
        )
    accent_text = " ".join(accent.split()) if accent else None
    if accent_text is not None and not 1 <= len(accent_text) <= 80:
        raise InvalidInput(
            "Describe an accent in at most 80 characters.", code="invalid_accent", pointer="/accent"
        )
    for index, language in enumerate(languages):
        if not _LANGUAGE_RE.match(language):
            raise InvalidInput(
                f"'{language}' is not a language code such as en, de or pt-BR.",
                code="invalid_language",
                pointer=f"/languages/{index}",
            )
    profile = session.get(ContributorProfile, user_id)
    if profile is None:
        profile = ContributorProfile(user_id=user_id)
        session.add(profile)
    profile.share_age_band = share_age_band
    profile.gender = gender
    profile.accent = accent_text
    profile.share_region = share_region
    profile.languages = sorted(set(languages))
    profile.updated_at = utcnow()
    session.flush()
    # Values are quasi-identifiers: the audit records that they changed, not what to.
    append_event(
        session,
        actor=f"user:{user_id}",
        action="profile.updated",
        subject=f"user:{user_id}",
        payload={"fields": ["share_age_band", "gender", "accent", "share_region", "languages"]},
    )
    return profile


def demographics_of(user: User, profile: ContributorProfile | None, today: date) -> Demographics:
    if profile is None:
        return Demographics(None, None, None, None, ())
    return Demographics(
        age_band=age_band(user.date_of_birth, today)
        if profile.share_age_band and user.date_of_birth
        else None,
        gender=profile.gender,
        accent=profile.accent,
        # Only the country, never the subdivision: coarser is safer.
        region=(user.jurisdiction or "").split("-")[0] or None if profile.share_region else None,
        languages=tuple(profile.languages or ()),
    )
