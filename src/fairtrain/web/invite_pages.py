"""The page an invited counterparty opens: their own part, the terms, and their answer.

They have no account: the token in the address is their credential (see
:mod:`fairtrain.consent.policy`). Forms are CSRF-protected like every other page (the
pre-login cookie when they are not logged in). The page shows nothing of the asset but
their own part: their messages inline, their channel in an audio player, their face crop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairtrain.accounts.principal import Principal
from fairtrain.consent import counterparty
from fairtrain.consent.models import CounterpartyInvite, InviteStatus
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import DomainError, InvalidInput
from fairtrain.web.pages import check_form, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# What the counterparty's page calls the file they are in.
NOUNS = {"chat": "chat", "audio": "recording", "image": "photo", "video": "video"}


def _invite(request: Request, session: SessionDep, token: str) -> CounterpartyInvite:
    # An expiry found on the way is recorded even though the page then says "expired".
    request.state.commit_on_error = True
    return counterparty.invite_by_token(session, request.app.state.settings, token)


def _page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    token: str,
    invite: CounterpartyInvite,
    *,
    error: DomainError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    view = counterparty.invite_view(session, invite)
    shown = InviteStatus(invite.status) in (InviteStatus.PENDING, InviteStatus.CONSENTED)
    messages = (
        counterparty.own_messages(session, request.app.state.runtime, invite)
        if shown and invite.part_kind == counterparty.CHAT_SENDER and view.part is not None
        else []
    )
    return render(
        request,
        "invite.html",
        principal,
        status_code=status_code,
        view=view,
        token=token,
        noun=NOUNS.get(view.modality, "file"),
        shown=shown and view.part is not None,
        messages=messages,
        error=error,
    )


@router.get("/invites/{token}", response_class=HTMLResponse)
def invite_page(
    token: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    invite = _invite(request, session, token)
    return _page(request, principal, session, token, invite)


@router.post("/invites/{token}/answer", response_class=HTMLResponse)
def answer_submit(
    token: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    consent: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    check_form(request, principal, csrf_token)
    invite = _invite(request, session, token)
    try:
        if consent not in ("yes", "no"):
            raise InvalidInput("Choose to consent or to refuse.", code="invalid_answer")
        with session.begin_nested():
            counterparty.answer_invite(
                session,
                request.app.state.settings,
                invite,
                request.app.state.jobs.dispatch,
                consent=consent == "yes",
            )
    except DomainError as error:
        return _page(
            request, principal, session, token, invite, error=error, status_code=error.status
        )
    return RedirectResponse(f"/invites/{token}", status_code=303)


@router.post("/invites/{token}/withdraw", response_class=HTMLResponse)
def withdraw_submit(
    token: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_form(request, principal, csrf_token)
    invite = _invite(request, session, token)
    try:
        with session.begin_nested():
            counterparty.withdraw_invite(
                session, request.app.state.settings, invite, request.app.state.jobs.dispatch
            )
    except DomainError as error:
        return _page(
            request, principal, session, token, invite, error=error, status_code=error.status
        )
    return RedirectResponse(f"/invites/{token}", status_code=303)
