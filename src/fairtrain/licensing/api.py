"""Licensing over HTTP: quotes, orders (with an Idempotency-Key), invoices, payment
confirmation by operators, licences with their signed agreements, renewals, and each
contributor's earnings."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.audit.keys import key_id, platform_signing_key
from fairtrain.catalog.policy import (
    BuyerAction,
    authorize_buyer,
    authorize_contributor,
)
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import AuthenticationRequired, Forbidden
from fairtrain.licensing import service
from fairtrain.licensing.agreement import agreement_file
from fairtrain.licensing.models import Licence, Order, OrderState, Quote
from fairtrain.licensing.payments import method
from fairtrain.licensing.policy import authorize_spend
from fairtrain.money import format_money
from fairtrain.withdrawal import notices as notice_service

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["licensing"])


class QuoteLineOut(BaseModel):
    asset_id: str
    modality: str
    units: float
    price_minor: int


class QuoteOut(BaseModel):
    id: str
    dataset_id: str
    version_id: str
    purpose: str
    territory: str
    term_days: int
    currency: str
    item_count: int
    subtotal_minor: int
    fee_bps: int
    fee_minor: int
    total_minor: int
    total: str  # "12.00 EUR"
    lines_sha256: str
    renews_licence_id: str | None
    created_at: datetime
    expires_at: datetime
    lines: list[QuoteLineOut] | None = None


class OrderOut(BaseModel):
    id: str
    quote_id: str
    invoice_number: str
    state: str
    currency: str
    total_minor: int
    payment_method: str
    payment_reference: str | None
    created_at: datetime
    due_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    licence_id: str | None
    payment: dict[str, Any]  # what to do to pay


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=140)


class LicenceOut(BaseModel):
    id: str
    order_id: str
    dataset_id: str
    version_id: str
    purpose: str
    territory: str
    currency: str
    total_minor: int
    starts_at: datetime
    ends_at: datetime
    state: str
    agreement_sha256: str
    renews_licence_id: str | None
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class EarningOut(BaseModel):
    asset_id: str
    licence_id: str
    buyer: str
    purpose: str
    territory: str
    starts_at: datetime
    ends_at: datetime
    state: str
    amount_minor: int
    currency: str
    version_id: str
    granted_at: datetime
    # After a withdrawal: notified | acknowledged | attested | overdue (None: none).
    withdrawal: str | None = None


class EarningsOut(BaseModel):
    totals: dict[str, int]  # per currency
    licences: int
    earnings: list[EarningOut]


def _quote_out(quote: Quote, lines: list[QuoteLineOut] | None = None) -> QuoteOut:
    return QuoteOut(
        id=quote.id,
        dataset_id=quote.dataset_id,
        version_id=quote.version_id,
        purpose=quote.purpose,
        territory=quote.territory,
        term_days=quote.term_days,
        currency=quote.currency,
        item_count=quote.item_count,
        subtotal_minor=quote.subtotal_minor,
        fee_bps=quote.fee_bps,
        fee_minor=quote.fee_minor,
        total_minor=quote.total_minor,
        total=format_money(quote.total_minor, quote.currency),
        lines_sha256=quote.lines_sha256,
        renews_licence_id=quote.renews_licence_id,
        created_at=quote.created_at,
        expires_at=quote.expires_at,
        lines=lines,
    )


def _order_out(request: Request, session: Session, order: Order) -> OrderOut:
    licence_id = session.scalar(select(Licence.id).where(Licence.order_id == order.id))
    return OrderOut(
        id=order.id,
        quote_id=order.quote_id,
        invoice_number=order.invoice_number,
        state=order.state,
        currency=order.currency,
        total_minor=order.total_minor,
        payment_method=order.payment_method,
        payment_reference=order.payment_reference,
        created_at=order.created_at,
        due_at=order.due_at,
        paid_at=order.paid_at,
        cancelled_at=order.cancelled_at,
        licence_id=licence_id,
        payment=method(order.payment_method).instructions(
            request.app.state.settings,
            invoice_number=order.invoice_number,
            total_minor=order.total_minor,
            currency=order.currency,
        ),
    )


def licence_out(licence: Licence) -> LicenceOut:
    return LicenceOut(
        id=licence.id,
        order_id=licence.order_id,
        dataset_id=licence.dataset_id,
        version_id=licence.version_id,
        purpose=licence.purpose,
        territory=licence.territory,
        currency=licence.currency,
        total_minor=licence.total_minor,
        starts_at=licence.starts_at,
        ends_at=licence.ends_at,
        state=licence.state,
        agreement_sha256=licence.agreement_sha256,
        renews_licence_id=licence.renews_licence_id,
        created_at=licence.created_at,
        ended_at=licence.ended_at,
        end_reason=licence.end_reason,
    )


def _reader_org(principal: Principal) -> str | None:
    """The buyer's organisation, or None for an operator reading everything."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    if principal.kind == UserKind.OPERATOR and principal.via == "session":
        return None
    return authorize_buyer(principal, BuyerAction.LICENCES_WRITE)


@router.post("/dataset-versions/{version_id}/quotes", response_model=QuoteOut, status_code=201)
def create_quote(
    version_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> QuoteOut:
    """Price the version for its dataset's licence: each item at its owner's price, plus
    the platform fee, itemised. Refused when terms changed since the version was built."""
    org_id = authorize_buyer(principal, BuyerAction.LICENCES_WRITE)
    quote = service.quote_version(
        session, request.app.state.settings, org_id=org_id, version_id=version_id,
        actor=principal.ref,
    )  # fmt: skip
    return _quote_out(quote)


@router.get("/quotes/{quote_id}", response_model=QuoteOut)
def read_quote(quote_id: str, principal: PrincipalDep, session: SessionDep) -> QuoteOut:
    org_id = _reader_org(principal)
    quote = service.get_quote(session, quote_id, org_id)
    lines = [
        QuoteLineOut(asset_id=i.asset_id, modality=i.modality, units=i.units,
                     price_minor=i.price_minor)
        for i in service.quote_items(session, quote)
    ]  # fmt: skip
    return _quote_out(quote, lines)


@router.post("/quotes/{quote_id}/orders", response_model=OrderOut, status_code=201)
def create_order(
    quote_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response | OrderOut:
    """Accept a quote: an order and its invoice. Send an ``Idempotency-Key`` header: a
    retry with the same key returns the same order (200) instead of a second one."""
    org_id = authorize_spend(principal)
    order, created = service.place_order(
        session,
        request.app.state.settings,
        quote_id=quote_id,
        org_id=org_id,
        idempotency_key=idempotency_key or "",
        actor=principal.ref,
    )
    body = _order_out(request, session, order)
    if not created:
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    return body


@router.get("/orders", response_model=list[OrderOut])
def list_orders(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    state: Annotated[Literal["awaiting_payment", "paid", "cancelled"] | None, Query()] = None,
) -> list[OrderOut]:
    """A buyer's orders; operators see every organisation's (e.g. those awaiting payment)."""
    org_id = _reader_org(principal)
    orders = service.orders_of(session, org_id=org_id, state=OrderState(state) if state else None)
    return [_order_out(request, session, o) for o in orders]


@router.get("/orders/{order_id}", response_model=OrderOut)
def read_order(
    order_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> OrderOut:
    order = service.get_order(session, order_id, _reader_org(principal))
    return _order_out(request, session, order)


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
def cancel_order(
    order_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> OrderOut:
    org_id = authorize_spend(principal)
    order = service.cancel_order(session, order_id=order_id, org_id=org_id, actor=principal.ref)
    return _order_out(request, session, order)


@router.post("/orders/{order_id}/confirm-payment", response_model=LicenceOut)
def confirm_payment(
    order_id: str,
    body: PaymentIn,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> LicenceOut:
    """An operator confirms the transfer arrived: the ledger pays every contributor their
    share and the licence is granted. Confirming again returns the same licence."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.kind != UserKind.OPERATOR or principal.via != "session":
        raise Forbidden("Only operators, in person, confirm payments.", code="role_forbidden")
    licence = service.confirm_payment(
        session,
        request.app.state.settings,
        order_id=order_id,
        reference=body.reference,
        actor=principal.ref,
    )
    return licence_out(licence)


@router.get("/licences", response_model=list[LicenceOut])
def list_licences(principal: PrincipalDep, session: SessionDep) -> list[LicenceOut]:
    org_id = authorize_buyer(principal, BuyerAction.LICENCES_WRITE)
    return [licence_out(x) for x in service.licences_of(session, org_id)]


@router.get("/licences/{licence_id}", response_model=LicenceOut)
def read_licence(licence_id: str, principal: PrincipalDep, session: SessionDep) -> LicenceOut:
    return licence_out(service.get_licence(session, licence_id, _reader_org(principal)))


@router.get("/licences/{licence_id}/agreement")
def read_agreement(
    licence_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    """The signed ODRL Agreement: ``{"agreement", "jws", "public_key_id"}``; verify it
    offline with ``fairtrain licences verify-agreement FILE --public-key KEY.pem``."""
    licence = service.get_licence(session, licence_id, _reader_org(principal))
    key = platform_signing_key(request.app.state.settings)
    return agreement_file(licence.agreement, licence.agreement_jws, key_id(key.public_key()))


@router.post("/licences/{licence_id}/renewals", response_model=QuoteOut, status_code=201)
def renew_licence(
    licence_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> QuoteOut:
    """A quote for another term on the dataset's newest version (renewals pay again)."""
    org_id = authorize_buyer(principal, BuyerAction.LICENCES_WRITE)
    quote = service.renewal_quote(
        session, request.app.state.settings, licence_id=licence_id, org_id=org_id,
        actor=principal.ref,
    )  # fmt: skip
    return _quote_out(quote)


@router.get(
    "/me/earnings",
    response_model=EarningsOut,
    responses={200: {"content": {"text/csv": {}}}},
)
def my_earnings(
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> EarningsOut | Response:
    """Every licence of each of your assets: buyer, purpose, territory, term and amount."""
    user_id = authorize_contributor(principal)
    earnings = service.earnings_of(session, user_id)
    withdrawn = notice_service.item_statuses(session, user_id)
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["asset_id", "licence_id", "buyer", "purpose", "territory", "starts_at",
                         "ends_at", "state", "amount_minor", "currency", "granted_at",
                         "withdrawal"])  # fmt: skip
        for e in earnings:
            writer.writerow([e.asset_id, e.licence_id, _cell(e.buyer), e.purpose, e.territory,
                             e.starts_at.isoformat(), e.ends_at.isoformat(), e.state,
                             e.amount_minor, e.currency, e.granted_at.isoformat(),
                             withdrawn.get((e.licence_id, e.asset_id), "")])  # fmt: skip
        return PlainTextResponse(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="earnings.csv"'},
        )
    totals: dict[str, int] = {}
    for e in earnings:
        totals[e.currency] = totals.get(e.currency, 0) + e.amount_minor
    return EarningsOut(
        totals=totals,
        licences=len({e.licence_id for e in earnings}),
        earnings=[_earning(e, withdrawn.get((e.licence_id, e.asset_id))) for e in earnings],
    )


def _earning(e: service.Earning, withdrawal: str | None) -> EarningOut:
    return EarningOut(
        asset_id=e.asset_id, licence_id=e.licence_id, buyer=e.buyer, purpose=e.purpose,
        territory=e.territory, starts_at=e.starts_at, ends_at=e.ends_at, state=e.state,
        amount_minor=e.amount_minor, currency=e.currency, version_id=e.version_id,
        granted_at=e.granted_at, withdrawal=withdrawal,
    )  # fmt: skip


def _cell(value: str) -> str:
    """A CSV cell that spreadsheet programs will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
