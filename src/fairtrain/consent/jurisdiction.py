"""Extra requirements by the contributor's jurisdiction: a reviewed table, not guesses.

Each rule names where it applies (an ISO 3166-1 country, a group such as the EEA, or an
ISO 3166-2 region such as ``US-IL``), what triggers it (terms that allow a biometric
use) and what it does: **add a step** (the contributor must give an explicit, separate
consent, recorded in the receipt) or **forbid a term** (such terms cannot be saved).
A minimum age by jurisdiction is checked at sign-up.

This table encodes the platform's reading of the named laws for its own flows; it is not
legal advice, and a change to it is a reviewed code change with a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from fairtrain.consent import purposes
from fairtrain.consent.evaluate import EEA
from fairtrain.consent.odrl import PolicyError

__all__ = [
    "BIOMETRIC",
    "RULES",
    "JurisdictionRule",
    "check_terms",
    "minimum_age",
    "required_steps",
]

# Uses that process biometric data "for the purpose of uniquely identifying a natural
# person" (GDPR Art. 9(1)) or copy a person's voice or likeness.
BIOMETRIC = frozenset(
    {
        "face_recognition",
        "biometric_identification",
        "voice_cloning",
        "synthetic_likeness",
        "emotion_recognition",
    }
)

ADD_STEP, FORBID = "add_step", "forbid"
EXPLICIT_BIOMETRIC_CONSENT = "explicit_biometric_consent"


@dataclass(frozen=True, slots=True)
class JurisdictionRule:
    key: str
    applies_to: frozenset[str]  # countries, or ISO 3166-2 regions
    law: str
    effect: str  # add_step | forbid
    step: str | None  # the attestation the contributor must give (add_step)
    sentence: str  # what the contributor is told


RULES: tuple[JurisdictionRule, ...] = (
    JurisdictionRule(
        "gdpr_art9_biometric",
        frozenset(EEA | {"GB", "CH"}),
        "GDPR Art. 9(2)(a) (UK GDPR, Swiss FADP Art. 6(7) alike)",
        ADD_STEP,
        EXPLICIT_BIOMETRIC_CONSENT,
        "These terms allow uses of your face or voice that identify you. The law where "
        "you live needs your explicit consent to that, separately from the rest.",
    ),
    JurisdictionRule(
        "bipa_no_sale",
        frozenset({"US-IL"}),
        "Illinois Biometric Information Privacy Act, 740 ILCS 14/15(c)",
        FORBID,
        None,
        "Illinois law forbids selling or profiting from biometric identifiers, so these "
        "terms cannot allow face recognition, voice copying or other biometric uses.",
    ),
    JurisdictionRule(
        "texas_cubi_release",
        frozenset({"US-TX", "US-WA"}),
        "Texas Bus. & Com. Code §503.001; Washington RCW 19.375",
        ADD_STEP,
        EXPLICIT_BIOMETRIC_CONSENT,
        "These terms allow biometric uses. The law where you live needs your separate, "
        "informed consent to that.",
    ),
)

# Age of majority where it is above the platform's 18 (contracts signed younger are voidable).
_MINIMUM_AGE = {"US-AL": 19, "US-NE": 19, "US-MS": 21, "KR": 19, "DZ": 19}


def _applies(rule: JurisdictionRule, jurisdiction: str | None) -> bool:
    if jurisdiction is None:
        return False
    country = jurisdiction.split("-", 1)[0]
    return jurisdiction in rule.applies_to or country in rule.applies_to


def minimum_age(jurisdiction: str) -> int:
    country = jurisdiction.split("-", 1)[0]
    return max(18, _MINIMUM_AGE.get(jurisdiction, _MINIMUM_AGE.get(country, 18)))


def _biometric_allowed(permit_mask: int, ban_mask: int) -> list[str]:
    allowed = []
    for key in sorted(BIOMETRIC):
        bit = purposes.PURPOSES[key].bit
        if permit_mask >> bit & 1 and not ban_mask >> bit & 1:
            allowed.append(key)
    return allowed


def required_steps(
    jurisdiction: str | None, permit_mask: int, ban_mask: int
) -> list[JurisdictionRule]:
    """The add-a-step rules these terms trigger for this contributor."""
    if not _biometric_allowed(permit_mask, ban_mask):
        return []
    return [r for r in RULES if r.effect == ADD_STEP and _applies(r, jurisdiction)]


def check_terms(
    jurisdiction: str | None,
    permit_mask: int,
    ban_mask: int,
    attestations: frozenset[str],
) -> list[str]:
    """Refuse terms a rule forbids or whose extra step is missing; returns the steps met."""
    allowed = _biometric_allowed(permit_mask, ban_mask)
    if not allowed:
        return []
    names = ", ".join(purposes.PURPOSES[k].label.lower() for k in allowed)
    for rule in RULES:
        if rule.effect == FORBID and _applies(rule, jurisdiction):
            raise PolicyError(
                "permission",
                f"{rule.sentence} (allowed here: {names}; {rule.law})",
                code="forbidden_in_jurisdiction",
            )
    met = []
    for rule in required_steps(jurisdiction, permit_mask, ban_mask):
        assert rule.step is not None
        if rule.step not in attestations:
            raise PolicyError(
                rule.step,
                f"{rule.sentence} (allowed here: {names}; {rule.law})",
                code="explicit_consent_required",
            )
        met.append(rule.key)
    return met
