"""Who may export and download a licence's data: decided here and nowhere else.

The licence holder only: a member of the licensee organisation in person, or one of its
API keys with the ``downloads:read`` scope (a training script). Another organisation's
licence, export or link is reported as missing, never as forbidden. Operators may read an
export's status (to help a buyer), never its files.
"""

from __future__ import annotations

from enum import StrEnum

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.catalog.policy import BuyerAction, authorize_buyer
from fairtrain.errors import AuthenticationRequired

__all__ = ["DeliveryAction", "authorize_delivery"]


class DeliveryAction(StrEnum):
    EXPORT = "export"  # ask for an export of a licence
    READ = "read"  # read an export's status and file list
    DOWNLOAD = "download"  # fetch a file through a signed link


def authorize_delivery(
    principal: Principal, action: DeliveryAction, org_id: str | None = None
) -> str | None:
    """The acting organisation's id; None for an operator reading any organisation's
    export status. ``org_id`` is the owner of the object acted on, when known."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    if (
        action == DeliveryAction.READ
        and principal.kind == UserKind.OPERATOR
        and principal.via == "session"
    ):
        return None
    return authorize_buyer(principal, BuyerAction.DOWNLOADS_READ, org_id)
