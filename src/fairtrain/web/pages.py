"""Server-rendered pages. Forms post back here; errors render through the shared handler."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairtrain.accounts import service as accounts
from fairtrain.accounts.api import set_session_cookie
from fairtrain.accounts.models import User
from fairtrain.accounts.principal import Principal
from fairtrain.deps import (
    SESSION_COOKIE,
    PasswordsDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
)
from fairtrain.errors import DomainError, InvalidInput
from fairtrain.web.csrf import check_anonymous_form, form_token

__all__ = ["check_form", "in_person", "render", "router"]

router = APIRouter(include_in_schema=False)


def in_person(principal: Principal) -> bool:
    """Logged in with a session (pages are for people; API keys and nobody go to /login)."""
    return principal.via == "session" and principal.user_id is not None


def render(
    request: Request, template: str, principal: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    response = HTMLResponse("", status_code=status_code)
    context.setdefault("csrf_token", form_token(request, response, principal))
    body = request.app.state.templates.get_template(template).render(
        request=request, principal=principal, **context
    )
    response.body = response.render(body)
    response.headers["content-length"] = str(len(response.body))
    return response


def check_form(request: Request, principal: Principal, presented: str) -> None:
    # With a session cookie, get_principal has already checked the session-bound token.
    if principal.session_id is None:
        check_anonymous_form(request, presented)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, principal: PrincipalDep) -> HTMLResponse:
    return render(request, "index.html", principal)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, principal: PrincipalDep) -> HTMLResponse:
    return render(request, "login.html", principal, form={})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_form(request, principal, csrf_token)
    request.state.commit_on_error = True
    try:
        user = accounts.authenticate(
            session,
            passwords,
            accounts.LoginLimits(settings.login_max_failures, settings.login_lockout_seconds),
            email=email,
            password=password,
            client=request.client.host if request.client else "unknown",
        )
    except DomainError as error:
        return render(
            request,
            "login.html",
            principal,
            status_code=error.status,
            form={"email": email},
            error=error,
        )
    request.state.commit_on_error = False
    _, token = accounts.start_session(session, user, ttl_seconds=settings.session_ttl_seconds)
    response = RedirectResponse("/account", status_code=303)
    set_session_cookie(response, settings, token)
    return response


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, principal: PrincipalDep) -> HTMLResponse:
    return render(request, "signup.html", principal, form={})


@router.post("/signup", response_class=HTMLResponse)
def signup_submit(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=256)],
    display_name: Annotated[str, Form(max_length=200)],
    date_of_birth: Annotated[str, Form(max_length=20)],
    jurisdiction: Annotated[str, Form(max_length=10)],
    adult_attestation: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_form(request, principal, csrf_token)
    form = {
        "email": email,
        "display_name": display_name,
        "date_of_birth": date_of_birth,
        "jurisdiction": jurisdiction,
    }
    try:
        try:
            born = date.fromisoformat(date_of_birth)
        except ValueError as exc:
            raise InvalidInput(
                "Give your date of birth as YYYY-MM-DD.",
                code="invalid_date_of_birth",
                pointer="/date_of_birth",
            ) from exc
        with session.begin_nested():
            user = accounts.register_contributor(
                session,
                passwords,
                email=email,
                password=password,
                display_name=display_name,
                date_of_birth=born,
                adult_attestation=adult_attestation == "yes",
                jurisdiction=jurisdiction,
            )
    except DomainError as error:
        return render(
            request, "signup.html", principal, status_code=error.status, form=form, error=error
        )
    _, token = accounts.start_session(session, user, ttl_seconds=settings.session_ttl_seconds)
    response = RedirectResponse("/account", status_code=303)
    set_session_cookie(response, settings, token)
    return response


@router.post("/logout")
def logout_submit(principal: PrincipalDep, session: SessionDep) -> Response:
    # The CSRF token was checked by get_principal (cookie session + unsafe method).
    if principal.session_id:
        accounts.revoke_session(session, principal, principal.session_id)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not principal.is_authenticated or principal.user_id is None:
        return RedirectResponse("/login", status_code=303)
    user = session.get(User, principal.user_id)
    sessions = accounts.list_sessions(session, principal)
    return render(request, "account.html", principal, user=user, sessions=sessions)
