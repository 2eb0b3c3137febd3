"""Request dependencies shared by every router: the database session, who is asking, CSRF.

Routers stay thin: ``SessionDep`` gives one transaction per request (committed before the
response is sent), ``PrincipalDep`` says who is asking, ``AuthenticatedDep`` refuses
anonymous callers. Unsafe requests authenticated by a cookie must carry a CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from fairtrain.accounts import service as accounts
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.accounts.principal import ANONYMOUS, Principal
from fairtrain.config import Settings
from fairtrain.errors import AuthenticationRequired, DomainError, Forbidden

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FORM_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AuthenticatedDep",
    "PasswordsDep",
    "PrincipalDep",
    "SessionDep",
    "SettingsDep",
    "csrf_token_for",
    "get_principal",
    "get_session",
]

SESSION_COOKIE = "ft_session"
CSRF_COOKIE = "ft_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_passwords(request: Request) -> PasswordPolicy:
    policy: PasswordPolicy = request.app.state.passwords
    return policy


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error.

    Domain errors that must still persist something (a failed login's throttle counter)
    set ``request.state.commit_on_error``.
    """
    session: Session = request.app.state.sessions()
    try:
        yield session
        session.commit()
    except DomainError:
        if getattr(request.state, "commit_on_error", False):
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PasswordsDep = Annotated[PasswordPolicy, Depends(get_passwords)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def csrf_token_for(settings: Settings, binding: str) -> str:
    """HMAC of the session (or the anonymous CSRF cookie) under the server secret."""
    key = settings.secret_key.get_secret_value().encode() if settings.secret_key else b""
    return hmac.new(key, f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


async def _presented_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        # Multipart bodies are uploads, streamed by their route: never parsed (and spooled)
        # here. Forms put the token in the action URL instead.
        return request.query_params.get(CSRF_FORM_FIELD)
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        value = form.get(CSRF_FORM_FIELD)
        return value if isinstance(value, str) else None
    return None


async def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    # The lookups run in a worker thread, never on the event loop: on SQLite every
    # transaction begins by taking the write lock, and a request waiting for it on the
    # loop would stall the very request that holds it (whose commit needs the loop), until
    # the busy timeout. A page that loads many images at once made this visible.
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationRequired(
                "Send API keys as 'Authorization: Bearer ftk_…'.", code="invalid_authorization"
            )
        principal = await anyio.to_thread.run_sync(
            accounts.resolve_api_key, session, credential.strip()
        )
        if principal is None:
            raise AuthenticationRequired(
                "This API key is unknown or has been revoked.", code="invalid_api_key"
            )
        request.state.principal = principal
        return principal
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        principal_or_none = await anyio.to_thread.run_sync(accounts.resolve_session, session, token)
        if principal_or_none is None:
            raise AuthenticationRequired(
                "Your session has ended. Log in again.", code="session_expired"
            )
        if request.method not in SAFE_METHODS:
            presented = await _presented_csrf(request)
            expected = csrf_token_for(settings, principal_or_none.session_id or "")
            if presented is None or not hmac.compare_digest(presented, expected):
                raise Forbidden(
                    "This form has expired or did not come from fairtrain. Reload and retry.",
                    code="csrf_failed",
                )
        request.state.principal = principal_or_none
        return principal_or_none
    request.state.principal = ANONYMOUS
    return ANONYMOUS


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_authenticated(principal: PrincipalDep) -> Principal:
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    return principal


AuthenticatedDep = Annotated[Principal, Depends(require_authenticated)]
