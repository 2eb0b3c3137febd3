"""The main-terms form of the web pages: what it posted, the terms it means, and the
preview (plain words and risk notes) a contributor sees before saving.

Saving needs the digest of the terms the preview showed: if any field changed since, the
page shows the new preview instead of saving, so nobody agrees to terms they did not read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Depends, Form

from fairtrain.audit.chain import canonical_json
from fairtrain.consent import purposes
from fairtrain.consent.models import AssetPolicy
from fairtrain.consent.odrl import Policy
from fairtrain.consent.plain import explain, risk_notes
from fairtrain.consent.templates import PROTECTED
from fairtrain.consent.terms import MainTerms, build_terms, terms_document
from fairtrain.errors import InvalidInput
from fairtrain.money import to_major

__all__ = [
    "PURPOSE_CHOICES",
    "PostedTerms",
    "Preview",
    "TermsForm",
    "form_from_policy",
    "parse_date",
    "preview_of",
]

_PREVIEW_UID = "urn:fairtrain:preview"


def _depth(key: str) -> int:
    return sum(1 for _ in purposes.ancestors(key)) - 1


# (key, label, depth in the tree) for every purpose, in taxonomy order.
PURPOSE_CHOICES: list[tuple[str, str, int]] = [
    (p.key, p.label, max(_depth(p.key), 0)) for p in purposes.PURPOSES.values()
]


@dataclass
class TermsForm:
    """The fields as posted (strings where the person typed), to fill the form again."""

    allowed: list[str] = field(default_factory=lambda: ["research_and_development"])
    prohibited: list[str] = field(default_factory=lambda: list(PROTECTED))
    territories: str = ""
    term_months: str = "12"
    price: str = "1.00"
    currency: str = "EUR"
    attribution: bool = False
    ends_on: str = ""  # YYYY-MM-DD; empty: no end date
    explicit_biometric_consent: bool = False
    digest: str = ""  # of the terms last previewed

    def main_terms(self) -> MainTerms:
        try:
            price = Decimal(self.price.strip().replace(",", ".") or "0")
        except InvalidOperation:
            raise InvalidInput(
                "The price must be a number, like 1.50.", code="invalid_price", pointer="price"
            ) from None
        try:
            months = int(self.term_months.strip())
        except ValueError:
            raise InvalidInput(
                "The licence length must be a whole number of months.",
                code="invalid_term",
                pointer="term_months",
            ) from None
        ends = parse_date(self.ends_on, "ends_on") if self.ends_on.strip() else None
        return MainTerms(
            allowed=tuple(self.allowed),
            prohibited=tuple(self.prohibited),
            territories=tuple(t for t in self.territories.replace(";", ",").split(",")),
            term_months=months,
            price=price,
            currency=self.currency.upper(),
            attribution=self.attribution,
            ends_at=ends,
        )

    def attestations(self) -> frozenset[str]:
        return frozenset({"explicit_biometric_consent"} if self.explicit_biometric_consent else ())


def parse_date(text: str, pointer: str) -> datetime:
    """A day typed in a date field, as the end of that day in UTC."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            "Give the date as YYYY-MM-DD, like 2027-06-30.", code="invalid_date", pointer=pointer
        ) from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Preview:
    explanation: list[str]
    risks: list[str]
    digest: str


def _policy(form: TermsForm) -> tuple[Policy, str]:
    terms = form.main_terms()
    document = terms_document(terms, uid=_PREVIEW_UID, target=None)
    flags = ",".join(sorted(form.attestations()))
    digest = hashlib.sha256(canonical_json(document) + flags.encode()).hexdigest()
    return build_terms(terms, uid=_PREVIEW_UID, target=None), digest


def preview_of(form: TermsForm, modalities: Iterable[str | None]) -> Preview:
    """The terms in plain words and the risk notes for every kind of data they cover."""
    policy, digest = _policy(form)
    risks: list[str] = []
    for modality in dict.fromkeys(modalities):
        risks.extend(n for n in risk_notes(policy, modality) if n not in risks)
    return Preview(explanation=explain(policy), risks=risks, digest=digest)


def _top(mask: int) -> list[str]:
    keys = {p.key for p in purposes.PURPOSES.values() if mask >> p.bit & 1}
    return [k for k in purposes.PURPOSES if k in keys and purposes.PURPOSES[k].parent not in keys]


def _attribution(policy: Policy) -> bool:
    return any("attribute" in d.actions for rule in policy.permissions for d in rule.duties)


def form_from_policy(record: AssetPolicy | None, policy: Policy | None) -> TermsForm:
    """The form filled with the asset's current terms (or the protective default)."""
    if record is None or policy is None:
        return TermsForm()
    months = round((record.term_days or 365) * 12 / 365) or 1
    price = "0.00"
    if record.price_minor is not None and record.currency:
        price = str(to_major(record.price_minor, record.currency))
    return TermsForm(
        allowed=_top(record.permit_mask) or ["research_and_development"],
        prohibited=_top(record.ban_mask),
        territories=", ".join(t for t in (record.territories or "").split(",") if t),
        term_months=str(months),
        price=price,
        currency=record.currency or "EUR",
        attribution=_attribution(policy),
        ends_on=record.not_after.date().isoformat() if record.not_after else "",
    )


def posted_terms(
    allowed: Annotated[list[str] | None, Form(max_length=60)] = None,
    prohibited: Annotated[list[str] | None, Form(max_length=60)] = None,
    territories: Annotated[str, Form(max_length=400)] = "",
    term_months: Annotated[str, Form(max_length=6)] = "12",
    price: Annotated[str, Form(max_length=20)] = "1.00",
    currency: Annotated[str, Form(pattern=r"^[A-Za-z]{3}$")] = "EUR",
    attribution: Annotated[str | None, Form(max_length=10)] = None,
    ends_on: Annotated[str, Form(max_length=20)] = "",
    explicit_biometric_consent: Annotated[str | None, Form(max_length=10)] = None,
    digest: Annotated[str, Form(max_length=64)] = "",
) -> TermsForm:
    """The main-terms fields of a posted form (a FastAPI dependency)."""
    return TermsForm(
        allowed=list(allowed or []),
        prohibited=list(prohibited or []),
        territories=territories,
        term_months=term_months,
        price=price,
        currency=currency,
        attribution=bool(attribution),
        ends_on=ends_on,
        explicit_biometric_consent=bool(explicit_biometric_consent),
        digest=digest,
    )


PostedTerms = Annotated[TermsForm, Depends(posted_terms)]
