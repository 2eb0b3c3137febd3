"""Who may see and act on assets: the owner; operators for review; nobody else.

Buyers never reach assets through these routes (they see listed, redacted material
through the catalogue), and another contributor's asset is reported as missing.
"""

from __future__ import annotations

from enum import StrEnum

from fairtrain.accounts.models import UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.errors import AuthenticationRequired, Forbidden, NotFound
from fairtrain.ingest.models import Asset

__all__ = ["AssetAction", "authorize_asset", "authorize_upload"]


class AssetAction(StrEnum):
    READ = "asset.read"  # state, metadata and the redacted version
    READ_ORIGINAL = "asset.read_original"  # the unredacted bytes: the owner only
    MANAGE = "asset.manage"  # approve, delete, edit redactions


def authorize_upload(principal: Principal) -> str:
    """Only a contributor, in person, uploads; returns their user id."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in to upload.")
    if principal.kind != UserKind.CONTRIBUTOR or principal.user_id is None:
        raise Forbidden("Only contributors upload their own data.", code="role_forbidden")
    return principal.user_id


def authorize_asset(principal: Principal, action: AssetAction, asset: Asset | None) -> Asset:
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if asset is None:
        raise NotFound("No such asset.", code="asset_not_found")
    if principal.user_id is not None and asset.owner_id == principal.user_id:
        return asset
    if principal.kind == UserKind.OPERATOR and action == AssetAction.READ:
        return asset
    raise NotFound("No such asset.", code="asset_not_found")
