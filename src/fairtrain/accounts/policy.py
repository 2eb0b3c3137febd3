"""Who may do what with accounts and organisations: decided here and nowhere else."""

from __future__ import annotations

from enum import StrEnum

from fairtrain.accounts.models import OrgRole, UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.errors import AuthenticationRequired, Forbidden, NotFound

__all__ = ["OrgAction", "authorize_contributor_self", "authorize_org", "authorize_staff"]


class OrgAction(StrEnum):
    READ = "org.read"
    MANAGE_MEMBERS = "org.manage_members"
    MANAGE_KEYS = "org.manage_keys"


def authorize_org(principal: Principal, action: OrgAction, org_id: str) -> None:
    """Members read their organisation; only its admins, in person, manage it.

    Anyone outside the organisation gets 404, so ids cannot be probed for existence.
    """
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in or send an API key.")
    if principal.kind == UserKind.OPERATOR and action == OrgAction.READ:
        return
    if principal.org_id != org_id:
        raise NotFound("No such organisation.", code="org_not_found")
    if action == OrgAction.READ:
        return
    if principal.via != "session" or principal.org_role != OrgRole.ADMIN:
        raise Forbidden(
            "Only an admin of this organisation, logged in, may do that.", code="not_org_admin"
        )


def authorize_staff(principal: Principal, *, allow: frozenset[UserKind]) -> None:
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.kind not in allow:
        raise Forbidden("Your role may not do that.", code="role_forbidden")


def authorize_contributor_self(principal: Principal) -> str:
    """A contributor acting on their own account, in person; returns their user id."""
    if not principal.is_authenticated:
        raise AuthenticationRequired("Log in first.")
    if principal.kind != UserKind.CONTRIBUTOR or principal.user_id is None:
        raise Forbidden("Only contributors have this.", code="role_forbidden")
    return principal.user_id
