"""Who may act on counterparty invites.

- An asset's invites (create, list, revoke) are its owner's alone: another contributor's
  asset, and an operator or a buyer asking, get ``asset_not_found``, never "forbidden".
  The list holds what the owner typed about the people they asked, so not even operators
  read it here.
- An invite itself is answered with its link: the token is the counterparty's credential
  (they have no account), so the token routes are open to whoever holds it, logged in or
  not. The service refuses any token that opens no invite with ``invite_not_found``.
"""

from __future__ import annotations

from fairtrain.accounts.principal import Principal
from fairtrain.errors import AuthenticationRequired, NotFound
from fairtrain.ingest.models import Asset

__all__ = ["authorize_invites"]


def authorize_invites(principal: Principal, asset: Asset | None) -> Asset:
    """The asset, if ``principal`` is its owner (who may invite the people in it)."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if asset is None or principal.user_id is None or asset.owner_id != principal.user_id:
        raise NotFound("No such asset.", code="asset_not_found")
    return asset
