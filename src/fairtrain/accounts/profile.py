"""Contributor demographics: optional, self-declared, generalised before they are stored.

Buyers balance datasets by these, so they matter; they are also quasi-identifiers, so
only bands and coarse values exist here, and delivered metadata is k-anonymised again.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from fairtrain.accounts.demographics import (
    AGE_BANDS,
    GENDERS,
    Demographics,
    age_band,
    demographics_of,
)
from fairtrain.accounts.models import ContributorProfile, User, UserKind
from fairtrain.audit.service import append_event
from fairtrain.catalog import service as catalog
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

_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")


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
    catalog.sync_owner(session, user_id)  # listed assets show the new (generalised) values
    return profile
