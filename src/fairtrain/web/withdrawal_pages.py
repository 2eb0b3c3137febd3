"""Withdrawal pages: a contributor takes media back (one item, several, or everything;
from every use or one purpose) and follows each buyer's answer; operators see the
notices whose deletion deadline passed without an attestation.

The pages call the same services, under the same rules, as ``/api/v1/withdrawals`` and
``/api/v1/notices/escalated``; a refused form writes nothing (a savepoint) and re-renders
with the machine code and what was chosen."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.policy import authorize_staff
from fairtrain.accounts.principal import Principal
from fairtrain.catalog.policy import authorize_contributor
from fairtrain.consent import purposes
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import DomainError
from fairtrain.ingest import service as ingest
from fairtrain.ingest.models import AssetState
from fairtrain.web.pages import in_person, render
from fairtrain.withdrawal import notices as notice_service
from fairtrain.withdrawal import service
from fairtrain.withdrawal.api import EXPLANATION

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# Offered in the form: what is not already gone from every use.
_GONE = frozenset({AssetState.WITHDRAWN, AssetState.ERASED, AssetState.REJECTED})


def _withdrawals_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
    done: str | None = None,
    chosen: frozenset[str] = frozenset(),
) -> Response:
    owner_id = authorize_contributor(principal)
    withdrawals = service.withdrawals_of(session, owner_id)
    statuses = {
        w.id: notice_service.buyer_statuses(session, service.notices_of_withdrawal(session, w.id))
        for w in withdrawals
    }
    assets = [
        a
        for a in ingest.list_assets(session, owner_id, limit=200)
        if AssetState(a.state) not in _GONE
    ]
    return render(
        request,
        "withdrawals.html",
        principal,
        status_code=status_code,
        error=error,
        done=done,
        chosen=chosen,
        withdrawals=withdrawals,
        statuses=statuses,
        assets=assets,
        purposes=sorted(purposes.PURPOSES.values(), key=lambda p: p.label),
        explanation=EXPLANATION,
    )


@router.get("/me/withdrawals", response_class=HTMLResponse)
def withdrawals_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _withdrawals_page(request, principal, session)


@router.post("/me/withdrawals", response_class=HTMLResponse)
def withdraw_submit(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    asset_id: Annotated[list[str] | None, Form(max_length=40)] = None,
    everything: Annotated[bool, Form()] = False,
    purpose: Annotated[str, Form(max_length=60)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    owner_id = authorize_contributor(principal)
    chosen = frozenset(asset_id or ())
    try:
        with session.begin_nested():
            result = service.withdraw(
                session,
                request.app.state.settings,
                request.app.state.jobs.dispatch,
                owner_id=owner_id,
                actor=principal.ref,
                asset_ids=None if everything else sorted(chosen),
                everything=everything,
                purpose=purpose or None,
            )
    except DomainError as error:
        return _withdrawals_page(
            request, principal, session, status_code=error.status, error=error, chosen=chosen
        )
    return _withdrawals_page(request, principal, session, done=result.withdrawal.id)


@router.get("/operator/attestations", response_class=HTMLResponse)
def overdue_attestations(
    request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    authorize_staff(principal, allow=frozenset({UserKind.OPERATOR}))
    overdue = notice_service.escalated_notices(session)
    return render(
        request,
        "operator_attestations.html",
        principal,
        overdue=overdue,
        buyers=notice_service.buyer_statuses(session, overdue),
    )
