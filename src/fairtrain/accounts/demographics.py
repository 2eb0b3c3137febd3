"""Contributor demographics as buyers may see them: bands and coarse values only.

Pure functions (no database), so the catalogue and dataset builds can derive the same
generalised values the profile page shows. They are quasi-identifiers: delivered metadata
is k-anonymised again (``datasets.kanon``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fairtrain.accounts.models import ContributorProfile, User

__all__ = ["AGE_BANDS", "GENDERS", "Demographics", "age_band", "demographics_of"]

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("woman", "man", "non-binary", "another")


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
