"""Money over HTTP: a contributor's statement and payout details; the trial balance;
payout batches for operators (create, read, export for the bank, mark paid)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from fairtrain.config import Settings
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import InvalidInput, NotFound
from fairtrain.ledger import service
from fairtrain.ledger.models import PayoutBatch, PayoutDetails
from fairtrain.ledger.payouts import mask_iban
from fairtrain.ledger.policy import LedgerAction, authorize_ledger
from fairtrain.ledger.schemas import (
    AccountBalanceOut,
    CurrencyBalanceOut,
    CurrencyTotalOut,
    PayoutBatchIn,
    PayoutBatchOut,
    PayoutBatchSummary,
    PayoutDetailsIn,
    PayoutDetailsOut,
    PayoutItemOut,
    SkippedOut,
    StatementLineOut,
    StatementOut,
    TrialBalanceOut,
)
from fairtrain.ledger.statements import statement_csv

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["ledger"])

_CSV: dict[str, Any] = {"text/csv": {"schema": {"type": "string"}}}
_FILES: dict[int | str, dict[str, Any]] = {
    200: {"content": {**_CSV, "application/xml": {"schema": {"type": "string"}}}}
}
FormatQuery = Annotated[str, Query(max_length=16, description="json or csv")]
CurrencyQuery = Annotated[str | None, Query(max_length=8, description="Only this currency.")]


def _details_out(details: PayoutDetails) -> PayoutDetailsOut:
    return PayoutDetailsOut(
        account_holder=details.account_holder,
        iban_masked=mask_iban(details.iban),
        iban_country=details.iban[:2],
        updated_at=details.updated_at,
    )


def _summary(batch: PayoutBatch) -> PayoutBatchSummary:
    return PayoutBatchSummary(
        id=batch.id,
        currency=batch.currency,
        state=str(batch.state),
        item_count=batch.item_count,
        total_minor=batch.total_minor,
        entry_id=batch.entry_id,
        paid_entry_id=batch.paid_entry_id,
        created_by=batch.created_by,
        created_at=batch.created_at,
        paid_by=batch.paid_by,
        paid_at=batch.paid_at,
    )


def _batch_out(session: SessionDep, batch: PayoutBatch) -> PayoutBatchOut:
    items = [
        PayoutItemOut(
            id=item.id,
            user_id=item.user_id,
            amount_minor=item.amount_minor,
            account_holder=item.account_holder,
            iban_masked=mask_iban(item.iban),
        )
        for item in service.batch_items(session, batch.id)
    ]
    return PayoutBatchOut(
        **_summary(batch).model_dump(),
        items=items,
        skipped=[SkippedOut(**entry) for entry in batch.skipped],
    )


# -- contributors --------------------------------------------------------------------------


@router.get("/me/statement", response_model=StatementOut, responses={200: {"content": _CSV}})
def my_statement(
    principal: PrincipalDep,
    session: SessionDep,
    format: FormatQuery = "json",
    currency: CurrencyQuery = None,
) -> StatementOut | Response:
    """Every line on your account with us: earnings, payouts, running balance."""
    user_id = authorize_ledger(principal, LedgerAction.READ_OWN_STATEMENT)
    if format not in ("json", "csv"):
        raise InvalidInput(
            "Ask for format=json or format=csv.", code="unknown_format", pointer="query:/format"
        )
    lines = service.statement(session, user_id, currency=currency)
    if format == "csv":
        return Response(
            statement_csv(lines),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="statement.csv"'},
        )
    closing: dict[str, int] = {}
    for line in lines:
        closing[line.currency] = line.balance_minor
    return StatementOut(
        user_id=user_id,
        lines=[
            StatementLineOut(
                posted_at=line.posted_at,
                entry_id=line.entry_id,
                kind=line.kind.value,
                description=line.description,
                currency=line.currency,
                amount_minor=line.amount_minor,
                balance_minor=line.balance_minor,
            )
            for line in lines
        ],
        balances=[CurrencyTotalOut(currency=c, amount_minor=a) for c, a in sorted(closing.items())],
    )


@router.get("/me/payout-details", response_model=PayoutDetailsOut)
def read_payout_details(principal: PrincipalDep, session: SessionDep) -> PayoutDetailsOut:
    """Where you are paid (the IBAN masked)."""
    user_id = authorize_ledger(principal, LedgerAction.MANAGE_OWN_PAYOUT_DETAILS)
    details = service.payout_details_of(session, user_id)
    if details is None:
        raise NotFound(
            "You have not given payout details yet; PUT them here to be paid.",
            code="payout_details_not_found",
        )
    return _details_out(details)


@router.put("/me/payout-details", response_model=PayoutDetailsOut)
def write_payout_details(
    body: PayoutDetailsIn, principal: PrincipalDep, session: SessionDep
) -> PayoutDetailsOut:
    """Register or change where you are paid; the next payout batch uses these."""
    user_id = authorize_ledger(principal, LedgerAction.MANAGE_OWN_PAYOUT_DETAILS)
    details = service.set_payout_details(
        session,
        user_id=user_id,
        account_holder=body.account_holder,
        iban=body.iban,
        actor=principal.ref,
    )
    return _details_out(details)


# -- operators and auditors ----------------------------------------------------------------


@router.get("/ledger/trial-balance", response_model=TrialBalanceOut)
def read_trial_balance(principal: PrincipalDep, session: SessionDep) -> TrialBalanceOut:
    """Every account's debits, credits and balance per currency; totals always agree."""
    authorize_ledger(principal, LedgerAction.READ_TRIAL_BALANCE)
    result = service.trial_balance(session)
    return TrialBalanceOut(
        currencies=[
            CurrencyBalanceOut(
                currency=c.currency,
                debit_minor=c.debit_minor,
                credit_minor=c.credit_minor,
                accounts=[
                    AccountBalanceOut(
                        account=a.account,
                        kind=a.kind.value,
                        debit_minor=a.debit_minor,
                        credit_minor=a.credit_minor,
                        balance_minor=a.balance_minor,
                    )
                    for a in c.accounts
                ],
            )
            for c in result.currencies
        ]
    )


@router.post("/payouts", response_model=PayoutBatchOut, status_code=status.HTTP_201_CREATED)
def create_batch(
    body: PayoutBatchIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> PayoutBatchOut:
    """Pay everyone owed at least the payout minimum who has payout details."""
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    settings: Settings = request.app.state.settings
    batch = service.create_payout_batch(
        session,
        currency=body.currency,
        minimum_minor=settings.payout_minimum_minor,
        actor=principal.ref,
    )
    return _batch_out(session, batch)


@router.get("/payouts", response_model=list[PayoutBatchSummary])
def list_batches(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PayoutBatchSummary]:
    """Payout batches, newest first."""
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    return [_summary(batch) for batch in service.list_batches(session, limit=limit)]


@router.get("/payouts/{batch_id}", response_model=PayoutBatchOut)
def read_batch(batch_id: str, principal: PrincipalDep, session: SessionDep) -> PayoutBatchOut:
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    return _batch_out(session, service.get_batch(session, batch_id))


@router.get("/payouts/{batch_id}/export", response_class=Response, responses=_FILES)
def export_batch(
    batch_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[str, Query(max_length=16, description="csv or pain001")] = "csv",
) -> Response:
    """The batch for the bank: CSV, or an ISO 20022 pain.001.001.09 credit-transfer file."""
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    settings: Settings = request.app.state.settings
    exported = service.export_batch(
        session,
        batch_id,
        export_format=format,
        debtor_name=settings.payout_debtor_name,
        debtor_iban=settings.payout_debtor_iban,
        debtor_bic=settings.payout_debtor_bic,
        actor=principal.ref,
    )
    return Response(
        exported.content,
        media_type=exported.media_type,
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'},
    )


@router.post("/payouts/{batch_id}/mark-paid", response_model=PayoutBatchOut)
def mark_paid(batch_id: str, principal: PrincipalDep, session: SessionDep) -> PayoutBatchOut:
    """The bank confirmed the transfers: books them out of the bank account."""
    authorize_ledger(principal, LedgerAction.RUN_PAYOUTS)
    batch = service.mark_batch_paid(session, batch_id, actor=principal.ref)
    return _batch_out(session, batch)
