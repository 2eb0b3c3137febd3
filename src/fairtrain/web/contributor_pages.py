"""A contributor's marketplace pages: who licensed what (buyer, purpose, term, dataset
version), earnings with a chart and the statement, where to be paid, and campaigns to
answer with a listed asset."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairtrain.accounts.principal import Principal
from fairtrain.catalog import campaigns
from fairtrain.catalog.policy import authorize_contributor
from fairtrain.consent import purposes
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import DomainError
from fairtrain.ledger import service as ledger
from fairtrain.ledger.payouts import mask_iban
from fairtrain.ledger.policy import LedgerAction, authorize_ledger
from fairtrain.licensing import service as licensing
from fairtrain.money import format_money, to_major
from fairtrain.web.charts import BarChart, bar_chart
from fairtrain.web.pages import in_person, render

__all__ = ["earnings_chart", "router"]

router = APIRouter(include_in_schema=False)


def _purpose_words(key: str) -> str:
    found = purposes.PURPOSES.get(key)
    return found.label if found else key


@router.get("/me/licences", response_class=HTMLResponse)
def my_licences_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    user_id = authorize_contributor(principal)
    return render(
        request,
        "my_licences.html",
        principal,
        earnings=licensing.earnings_of(session, user_id),
        purpose_words=_purpose_words,
        money=format_money,
    )


def earnings_chart(earnings: list[licensing.Earning]) -> tuple[BarChart, str | None]:
    """Earnings per month (when the licence was granted), in the currency most earned in;
    the chart shows one currency so bars compare (the table lists every currency)."""
    by_currency: dict[str, int] = defaultdict(int)
    for e in earnings:
        by_currency[e.currency] += e.amount_minor
    if not by_currency:
        return bar_chart("Earnings per month", []), None
    currency = max(by_currency, key=lambda c: (by_currency[c], c))
    months: dict[str, int] = defaultdict(int)
    for e in earnings:
        if e.currency == currency:
            months[e.granted_at.strftime("%Y-%m")] += e.amount_minor
    rows = [
        (month, float(to_major(amount, currency)), format_money(amount, currency))
        for month, amount in sorted(months.items())
    ]
    return bar_chart(f"Earnings per month in {currency}", rows), currency


def _earnings_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
    saved: bool = False,
    form: dict[str, str] | None = None,
) -> Response:
    user_id = authorize_ledger(principal, LedgerAction.READ_OWN_STATEMENT)
    earnings = licensing.earnings_of(session, user_id)
    totals: dict[str, int] = defaultdict(int)
    for e in earnings:
        totals[e.currency] += e.amount_minor
    lines = ledger.statement(session, user_id)
    balances: dict[str, int] = {}
    for line in lines:
        balances[line.currency] = line.balance_minor
    chart, _ = earnings_chart(earnings)
    details = ledger.payout_details_of(session, user_id)
    return render(
        request,
        "earnings.html",
        principal,
        status_code=status_code,
        error=error,
        saved=saved,
        form=form or {},
        totals=dict(sorted(totals.items())),
        balances=dict(sorted(balances.items())),
        licence_count=len({e.licence_id for e in earnings}),
        chart=chart,
        lines=list(reversed(lines))[:100],
        details=details,
        iban_masked=mask_iban(details.iban) if details else None,
        money=format_money,
    )


@router.get("/me/earnings", response_class=HTMLResponse)
def earnings_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _earnings_page(request, principal, session)


@router.post("/me/payout-details", response_class=HTMLResponse)
def payout_details_submit(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    account_holder: Annotated[str, Form(max_length=200)],
    iban: Annotated[str, Form(max_length=64)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    user_id = authorize_ledger(principal, LedgerAction.MANAGE_OWN_PAYOUT_DETAILS)
    try:
        with session.begin_nested():
            ledger.set_payout_details(
                session,
                user_id=user_id,
                account_holder=account_holder,
                iban=iban,
                actor=principal.ref,
            )
    except DomainError as error:
        return _earnings_page(
            request,
            principal,
            session,
            status_code=error.status,
            error=error,
            form={"account_holder": account_holder, "iban": iban},
        )
    return _earnings_page(request, principal, session, saved=True)


def _campaigns_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
    submitted: str | None = None,
) -> Response:
    user_id = authorize_contributor(principal)
    return render(
        request,
        "campaigns.html",
        principal,
        status_code=status_code,
        error=error,
        submitted=submitted,
        views=campaigns.list_for_contributor(session, request.app.state.settings, user_id),
        submissions=campaigns.submissions_of(session, owner_id=user_id),
        purpose_words=_purpose_words,
        money=format_money,
    )


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _campaigns_page(request, principal, session)


@router.post("/campaigns/{campaign_id}/submit", response_class=HTMLResponse)
def campaign_submit(
    campaign_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    asset_id: Annotated[str, Form(max_length=40)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    user_id = authorize_contributor(principal)
    try:
        with session.begin_nested():
            campaign = campaigns.get_campaign(session, campaign_id)
            campaigns.submit_asset(
                session,
                request.app.state.settings,
                campaign,
                asset_id=asset_id,
                owner_id=user_id,
                actor=principal.ref,
            )
    except DomainError as error:
        return _campaigns_page(request, principal, session, status_code=error.status, error=error)
    return _campaigns_page(request, principal, session, status_code=201, submitted=campaign_id)
