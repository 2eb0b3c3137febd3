"""Buyer organisation pages: sign-up, members and API keys (keys shown once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairtrain.accounts import service as accounts
from fairtrain.accounts.api import set_session_cookie
from fairtrain.accounts.models import OrgRole
from fairtrain.accounts.policy import OrgAction, authorize_org
from fairtrain.accounts.principal import API_KEY_SCOPES
from fairtrain.deps import PasswordsDep, PrincipalDep, SessionDep, SettingsDep
from fairtrain.errors import DomainError
from fairtrain.web.pages import check_form, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/signup/buyer", response_class=HTMLResponse)
def buyer_signup_page(request: Request, principal: PrincipalDep) -> HTMLResponse:
    return render(request, "buyer_signup.html", principal, form={})


@router.post("/signup/buyer", response_class=HTMLResponse)
def buyer_signup_submit(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    org_name: Annotated[str, Form(max_length=300)],
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=256)],
    display_name: Annotated[str, Form(max_length=200)],
    jurisdiction: Annotated[str, Form(max_length=10)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_form(request, principal, csrf_token)
    form = {
        "org_name": org_name,
        "email": email,
        "display_name": display_name,
        "jurisdiction": jurisdiction,
    }
    try:
        with session.begin_nested():
            _, user = accounts.register_buyer_org(
                session,
                passwords,
                org_name=org_name,
                email=email,
                password=password,
                display_name=display_name,
                jurisdiction=jurisdiction,
            )
    except DomainError as error:
        return render(
            request,
            "buyer_signup.html",
            principal,
            status_code=error.status,
            form=form,
            error=error,
        )
    _, token = accounts.start_session(session, user, ttl_seconds=settings.session_ttl_seconds)
    response = RedirectResponse("/org", status_code=303)
    set_session_cookie(response, settings, token)
    return response


def _org_page(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
    new_secret: str | None = None,
) -> Response:
    # Pages are for people; programs use the API with their key.
    if principal.via != "session" or principal.org_id is None:
        return RedirectResponse("/login", status_code=303)
    authorize_org(principal, OrgAction.READ, principal.org_id)
    org = accounts.get_organisation(session, principal.org_id)
    is_admin = principal.org_role == OrgRole.ADMIN and principal.via == "session"
    return render(
        request,
        "org.html",
        principal,
        status_code=status_code,
        org=org,
        members=accounts.list_members(session, org.id),
        keys=accounts.list_api_keys(session, org.id) if is_admin else [],
        is_admin=is_admin,
        scopes=sorted(API_KEY_SCOPES),
        error=error,
        new_secret=new_secret,
    )


@router.get("/org", response_class=HTMLResponse)
def org_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    return _org_page(request, principal, session)


@router.post("/org/api-keys", response_class=HTMLResponse)
def org_create_key(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)],
    scopes: Annotated[list[str], Form(max_length=20)],
) -> Response:
    if principal.via != "session" or principal.org_id is None:
        return RedirectResponse("/login", status_code=303)
    authorize_org(principal, OrgAction.MANAGE_KEYS, principal.org_id)
    try:
        with session.begin_nested():
            _, secret = accounts.create_api_key(
                session, principal, org_id=principal.org_id, name=name, scopes=scopes
            )
    except DomainError as error:
        return _org_page(request, principal, session, status_code=error.status, error=error)
    return _org_page(request, principal, session, status_code=201, new_secret=secret)


@router.post("/org/api-keys/{key_id}/revoke")
def org_revoke_key(key_id: str, principal: PrincipalDep, session: SessionDep) -> Response:
    if principal.via != "session" or principal.org_id is None:
        return RedirectResponse("/login", status_code=303)
    authorize_org(principal, OrgAction.MANAGE_KEYS, principal.org_id)
    accounts.revoke_api_key(session, principal, org_id=principal.org_id, key_id=key_id)
    return RedirectResponse("/org", status_code=303)
