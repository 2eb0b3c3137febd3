"""Who may search the catalogue and post campaigns: decided here and nowhere else.

Buyers (members of a buyer organisation, in person or by an API key with the right scope)
search and preview; operators search to review. Contributors see campaigns, not the
catalogue of other people's data. Another organisation's campaign is reported as missing.
"""

from __future__ import annotations

from enum import StrEnum

from fairtrain.accounts.models import OrgRole, UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.errors import AuthenticationRequired, Forbidden, NotFound

__all__ = [
    "BuyerAction",
    "authorize_buyer",
    "authorize_buyer_admin",
    "authorize_catalog_read",
    "authorize_contributor",
]


class BuyerAction(StrEnum):
    CATALOG_READ = "catalog:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    DATASETS_WRITE = "datasets:write"
    LICENCES_WRITE = "licences:write"
    DOWNLOADS_READ = "downloads:read"
    NOTICES_READ = "notices:read"
    ATTESTATIONS_WRITE = "attestations:write"


def authorize_catalog_read(principal: Principal) -> str | None:
    """Buyers and operators search; returns the buyer's organisation id (None: operator)."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    if principal.kind == UserKind.OPERATOR and principal.via == "session":
        return None
    return authorize_buyer(principal, BuyerAction.CATALOG_READ)


def authorize_buyer(principal: Principal, action: BuyerAction, org_id: str | None = None) -> str:
    """A member of a buyer organisation (or its API key with ``action`` in its scopes)
    acting for that organisation; returns the organisation id.

    ``org_id`` is the organisation that owns the object acted on: another organisation's
    object is reported as missing, never as forbidden.
    """
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    if principal.org_id is None or principal.kind != UserKind.BUYER:
        raise Forbidden("Only buyer organisations may do that.", code="role_forbidden")
    if not principal.has_scope(action.value):
        raise Forbidden(f"This API key lacks the '{action.value}' scope.", code="scope_missing")
    if org_id is not None and org_id != principal.org_id:
        raise NotFound("No such object in your organisation.", code="not_found")
    return principal.org_id


def authorize_buyer_admin(principal: Principal, org_id: str | None = None) -> str:
    """Spending decisions that only an admin of the organisation takes, in person."""
    org = authorize_buyer(principal, BuyerAction.LICENCES_WRITE, org_id)
    if principal.via != "session" or principal.org_role != OrgRole.ADMIN:
        raise Forbidden(
            "Only an admin of this organisation, logged in, may do that.", code="not_org_admin"
        )
    return org


def authorize_contributor(principal: Principal) -> str:
    """A contributor in person; returns their user id."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.kind != UserKind.CONTRIBUTOR or principal.user_id is None:
        raise Forbidden("Only contributors have this.", code="role_forbidden")
    return principal.user_id
