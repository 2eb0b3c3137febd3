"""Who may read and move money: decided here and nowhere else.

Every ledger route is for a person logged in with a session, never an API key: a
contributor reads their own statement and sets their own payout details; operators run
payouts; operators and auditors read the trial balance. Nobody reads another
contributor's statement (there is no route that takes a contributor's id).
"""

from __future__ import annotations

from enum import StrEnum

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.errors import AuthenticationRequired, Forbidden

__all__ = ["LedgerAction", "authorize_ledger"]


class LedgerAction(StrEnum):
    READ_OWN_STATEMENT = "ledger.read_own_statement"
    MANAGE_OWN_PAYOUT_DETAILS = "ledger.manage_own_payout_details"
    READ_TRIAL_BALANCE = "ledger.read_trial_balance"
    RUN_PAYOUTS = "ledger.run_payouts"  # create, read, export, mark paid


_ALLOWED: dict[LedgerAction, frozenset[UserKind]] = {
    LedgerAction.READ_OWN_STATEMENT: frozenset({UserKind.CONTRIBUTOR}),
    LedgerAction.MANAGE_OWN_PAYOUT_DETAILS: frozenset({UserKind.CONTRIBUTOR}),
    LedgerAction.READ_TRIAL_BALANCE: frozenset({UserKind.OPERATOR, UserKind.AUDITOR}),
    LedgerAction.RUN_PAYOUTS: frozenset({UserKind.OPERATOR}),
}


def authorize_ledger(principal: Principal, action: LedgerAction) -> str:
    """Allow ``action`` or refuse; returns the person's user id (the actor, or the
    contributor whose own money it is)."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.via != "session" or principal.user_id is None:
        raise AuthenticationRequired(
            "Money is handled by people logged in, not by API keys.", code="not_a_session"
        )
    if principal.kind not in _ALLOWED[action]:
        raise Forbidden("Your role may not do that.", code="role_forbidden")
    return principal.user_id
