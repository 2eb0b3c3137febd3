"""Who may commit an organisation's money: its admins in person, or an API key an admin
gave the ``licences:write`` scope. Members may look, build and quote; not buy."""

from __future__ import annotations

from fairtrain.accounts.models import OrgRole
from fairtrain.accounts.principal import Principal
from fairtrain.catalog.policy import BuyerAction, authorize_buyer
from fairtrain.errors import Forbidden

__all__ = ["authorize_spend"]


def authorize_spend(principal: Principal, org_id: str | None = None) -> str:
    org = authorize_buyer(principal, BuyerAction.LICENCES_WRITE, org_id)
    if principal.via == "api_key":
        return org
    if principal.org_role != OrgRole.ADMIN:
        raise Forbidden(
            "Only an admin of this organisation places and cancels orders.",
            code="not_org_admin",
        )
    return org
