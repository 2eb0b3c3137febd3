"""CSRF tokens for pages: bound to the session, or to a random cookie before login."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from fairtrain.accounts.principal import Principal
from fairtrain.config import Settings
from fairtrain.deps import CSRF_COOKIE, csrf_token_for
from fairtrain.errors import Forbidden

__all__ = ["check_anonymous_form", "form_token"]


def form_token(request: Request, response: Response, principal: Principal) -> str:
    """The token a page embeds in its forms (sets the pre-login cookie when needed)."""
    settings: Settings = request.app.state.settings
    if principal.session_id:
        return csrf_token_for(settings, principal.session_id)
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce:
        nonce = secrets.token_urlsafe(24)
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            httponly=True,
            samesite="strict",
            secure=settings.cookie_secure,
            path="/",
        )
    return csrf_token_for(settings, f"anon:{nonce}")


def check_anonymous_form(request: Request, presented: str | None) -> None:
    """Login and sign-up forms: the token must match the pre-login cookie."""
    settings: Settings = request.app.state.settings
    nonce = request.cookies.get(CSRF_COOKIE)
    expected = csrf_token_for(settings, f"anon:{nonce}") if nonce else None
    if expected is None or presented is None or not hmac.compare_digest(presented, expected):
        raise Forbidden(
            "This form has expired or did not come from fairtrain. Reload and retry.",
            code="csrf_failed",
        )
