"""An operator's money pages: orders awaiting payment (confirm when the transfer
arrived), payout batches (run, export for the bank, mark paid) and the trial balance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.accounts.service import get_organisation
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import DomainError, Forbidden
from fairtrain.ledger import service as ledger
from fairtrain.ledger.payouts import mask_iban
from fairtrain.ledger.policy import LedgerAction, authorize_ledger
from fairtrain.licensing import service as licensing
from fairtrain.licensing.models import OrderState
from fairtrain.money import format_money
from fairtrain.web.pages import in_person, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _operator(principal: Principal) -> None:
    # The same rule as POST /api/v1/orders/{id}/confirm-payment.
    if principal.kind != UserKind.OPERATOR:
        raise Forbidden("Only operators, in person, confirm payments.", code="role_forbidden")


def _orders_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
    confirmed: str | None = None,
) -> Response:
    _operator(principal)
    orders = licensing.orders_of(session, org_id=None, state=OrderState.AWAITING_PAYMENT)
    names = {o.org_id: get_organisation(session, o.org_id).name for o in orders}
    return render(
        request,
        "operator_orders.html",
        principal,
        status_code=status_code,
        error=error,
        confirmed=confirmed,
        orders=orders,
        names=names,
        money=format_money,
    )


@router.get("/operator/orders", response_class=HTMLResponse)
def operator_orders(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _orders_page(request, principal, session)


@router.post("/operator/orders/{order_id}/confirm", response_class=HTMLResponse)
def operator_confirm(
    order_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    reference: Annotated[str, Form(max_length=140)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    _operator(principal)
    try:
        with session.begin_nested():
            order = licensing.get_order(session, order_id, None)
            licensing.confirm_payment(
                session,
                request.app.state.settings,
                order_id=order_id,
                reference=reference,
                actor=principal.ref,
            )
    except DomainError as error:
        return _orders_page(request, principal, session, status_code=error.status, error=error)
    return _orders_page(request, principal, session, confirmed=order.invoice_number)


def _payouts_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
) -> Response:
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    batches = ledger.list_batches(session, limit=50)
    items = {b.id: ledger.batch_items(session, b.id) for b in batches[:5]}
    return render(
        request,
        "operator_payouts.html",
        principal,
        status_code=status_code,
        error=error,
        batches=batches,
        items=items,
        mask_iban=mask_iban,
        minimum=request.app.state.settings.payout_minimum_minor,
        money=format_money,
    )


@router.get("/operator/payouts", response_class=HTMLResponse)
def operator_payouts(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _payouts_page(request, principal, session)


@router.post("/operator/payouts", response_class=HTMLResponse)
def operator_run_payouts(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    currency: Annotated[str, Form(max_length=3)] = "EUR",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    try:
        with session.begin_nested():
            ledger.create_payout_batch(
                session,
                currency=currency.upper(),
                minimum_minor=request.app.state.settings.payout_minimum_minor,
                actor=principal.ref,
            )
    except DomainError as error:
        return _payouts_page(request, principal, session, status_code=error.status, error=error)
    return RedirectResponse("/operator/payouts", status_code=303)


@router.post("/operator/payouts/{batch_id}/mark-paid", response_class=HTMLResponse)
def operator_mark_paid(
    batch_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    try:
        with session.begin_nested():
            ledger.mark_batch_paid(session, batch_id, actor=principal.ref)
    except DomainError as error:
        return _payouts_page(request, principal, session, status_code=error.status, error=error)
    return RedirectResponse("/operator/payouts", status_code=303)


@router.get("/operator/trial-balance", response_class=HTMLResponse)
def operator_trial_balance(
    request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    authorize_ledger(principal, LedgerAction.READ_TRIAL_BALANCE)
    return render(
        request,
        "trial_balance.html",
        principal,
        balance=ledger.trial_balance(session),
        money=format_money,
    )
