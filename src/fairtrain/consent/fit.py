"""Does an asset's terms allow a licence — this purpose, here, for this whole term, at this
price? One decision, used by the catalogue, campaigns and dataset builds alike.

A licence is a stretch of time, not an instant: terms that end before the licence would,
or that allow shorter licences, refuse it. The evaluator (``consent.evaluate``) decides
one moment, so the full check asks it twice, at the licence's start and at its last
moment (every time constraint the policy language admits is an interval, so holding at
both ends means holding throughout), with the price the licence would pay.

Two ways to decide, which agree (a property test holds them to it):

- :func:`compiled_fit` on the compiled columns (``consent.compile``), exact for every
  policy whose ``exact`` flag is set — the catalogue's SQL filter is the same test;
- :func:`policy_fit` on the whole ODRL policy, for the rest, and to name the deciding
  rule when an asset is left out of a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fairtrain.consent import purposes
from fairtrain.consent.evaluate import Request, evaluate
from fairtrain.consent.odrl import Policy

__all__ = ["Fit", "LicenceAsk", "TermsSummary", "compiled_fit", "policy_fit"]


@dataclass(frozen=True, slots=True)
class LicenceAsk:
    """What a buyer's licence would be."""

    purpose: str  # a purpose key
    territory: str  # ISO 3166-1 alpha-2
    term_days: int
    currency: str | None  # None: whatever each asset is priced in
    start: datetime
    assignee: str | None = None  # the buyer organisation's IRI

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.term_days)


@dataclass(frozen=True, slots=True)
class TermsSummary:
    """The compiled columns an asset's current terms carry (AssetPolicy, CatalogEntry)."""

    permit_mask: int
    ban_mask: int
    territories: str | None  # ",DE,FR," or None for anywhere
    not_after: datetime | None
    term_days: int | None
    price_minor: int | None
    currency: str | None
    rules: tuple[tuple[str, str, int], ...] = ()  # (path, kind, mask): see consent.compile


@dataclass(frozen=True, slots=True)
class Fit:
    ok: bool
    code: str | None = None  # why not: a stable code
    reason: str | None = None  # why not: a sentence
    rule_path: str | None = None  # the deciding rule of the policy, when one decided


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _rule(terms: TermsSummary, kind: str, mask: int) -> str | None:
    """The first rule of ``kind`` whose purposes meet ``mask``: the one that decided."""
    return next((path for path, k, m in terms.rules if k == kind and m & mask), None)


def compiled_fit(terms: TermsSummary, ask: LicenceAsk, offered_minor: int | None = None) -> Fit:
    """The decision from the compiled columns (exact when the policy's ``exact`` is set),
    naming the deciding rule when the summary carries the rules' masks.

    ``offered_minor`` is what the licence pays for the asset; None means its asking price.
    """
    node = purposes.PURPOSES[ask.purpose]
    wanted = purposes.mask_of(purposes.descendants(ask.purpose))
    if not terms.permit_mask >> node.bit & 1:
        # The closest rule: the permission that allows other purposes, not this one.
        closest = next((path for path, kind, _ in terms.rules if kind == "permission"), None)
        return Fit(
            False,
            "purpose_not_permitted",
            f"Its owner does not allow use {node.words}.",
            closest,
        )
    if terms.ban_mask & wanted:
        return Fit(
            False,
            "purpose_prohibited",
            f"Its owner prohibits a use that '{node.label}' would include.",
            _rule(terms, "prohibition", wanted),
        )
    permission = _rule(terms, "permission", 1 << node.bit)
    if terms.territories is not None and f",{ask.territory.upper()}," not in terms.territories:
        return Fit(
            False, "territory_not_permitted", "Its owner does not allow use there.", permission
        )
    if terms.not_after is not None and ask.end > terms.not_after:
        return Fit(
            False,
            "terms_end_before_licence",
            f"Its owner's terms end on {_day(terms.not_after)}, before this licence would.",
            permission,
        )
    if terms.term_days is not None and ask.term_days > terms.term_days:
        return Fit(
            False,
            "term_too_long",
            f"Its owner allows licences of at most {terms.term_days} days.",
            permission,
        )
    if ask.currency and terms.price_minor is not None and terms.currency != ask.currency:
        return Fit(
            False,
            "currency_mismatch",
            f"It is priced in {terms.currency}; this licence is in {ask.currency}.",
            permission,
        )
    below = offered_minor is not None and offered_minor < (terms.price_minor or 0)
    if below:
        return Fit(
            False, "price_too_low", "The price offered is below its owner's price.", permission
        )
    return Fit(True)


def policy_fit(
    policy: Policy,
    ask: LicenceAsk,
    *,
    target: str,
    offered: Decimal | None,
    currency: str | None,
) -> Fit:
    """The decision from the whole policy, at both ends of the licence, naming the rule.

    ``offered`` is what the licence pays for this asset, in major units of ``currency``
    (None when the buyer offers nothing: free terms only).
    """
    for moment in (ask.start, ask.end - timedelta(seconds=1)):
        request = Request(
            action="use",
            purpose=ask.purpose,
            territory=ask.territory.upper(),
            at=moment,
            assignee=ask.assignee,
            target=target,
            pay_amount=offered,
            currency=currency if offered is not None else None,
            licence_start=ask.start,
        )
        decision = evaluate(policy, request)
        if decision.permitted:
            continue
        path = decision.rule_path or ""
        if path.startswith("prohibition"):
            code = "purpose_prohibited"
        elif moment != ask.start:
            code = "term_not_covered"  # allowed today, but not for the licence's whole term
        elif path.startswith("permission"):
            code = "terms_not_met"
        else:
            code = "purpose_not_permitted"
        return Fit(False, code, decision.reason, decision.rule_path)
    return Fit(True)
