"""Who may read the audit log: auditors and operators all of it; a person, their own events."""

from __future__ import annotations

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.errors import AuthenticationRequired, Forbidden

__all__ = ["authorize_log_read", "authorize_own_events"]

LOG_READERS = frozenset({UserKind.AUDITOR, UserKind.OPERATOR})


def authorize_log_read(principal: Principal) -> None:
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.kind not in LOG_READERS or principal.via != "session":
        raise Forbidden("Only auditors and operators read the whole log.", code="role_forbidden")


def authorize_own_events(principal: Principal) -> str:
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.user_id is None:
        raise AuthenticationRequired(
            "An API key acts for its organisation, not a person.", code="not_a_person"
        )
    return principal.user_id
