"""The world the authorisation matrix runs in: two tenants of every kind, plus staff.

Tenant "own" objects belong to the acting role's tenant; "other" objects to the second
tenant of the same kind. Every route is requested as every role, on both.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session
from tests.factories import STRONG_PASSWORD, login, sign_up_buyer, sign_up_contributor, unique_email

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import UserKind
from fairtrain.accounts.passwords import PasswordPolicy

__all__ = ["ROLES", "Caller", "World"]

ROLES = (
    "anonymous",
    "contributor",
    "buyer_admin",
    "buyer_member",
    "api_key",
    "operator",
    "auditor",
)
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Caller:
    role: str
    client: TestClient
    csrf: str | None = None
    bearer: str | None = None
    user_id: str | None = None
    org_id: str | None = None
    email: str | None = None

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        elif self.csrf and method not in ("GET", "HEAD", "OPTIONS"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        kwargs.setdefault("follow_redirects", False)
        return self.client.request(method, path, headers=headers, **kwargs)

    def page_csrf(self, path: str) -> str:
        """The CSRF token a page embeds in its forms (sets the pre-login cookie)."""
        page = self.client.get(path)
        found = _CSRF_RE.search(page.text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)


@dataclass
class Tenant:
    contributor: Caller
    buyer_admin: Caller
    buyer_member: Caller
    api_key: Caller


@dataclass
class World:
    own: Tenant
    other: Tenant
    operator: Caller
    auditor: Caller
    anonymous: Caller
    extra: dict[str, Any] = field(default_factory=dict)

    def caller(self, role: str, tenant: str = "own") -> Caller:
        if role == "anonymous":
            return self.anonymous
        if role in ("operator", "auditor"):
            return self.operator if role == "operator" else self.auditor
        side = self.own if tenant == "own" else self.other
        caller: Caller = getattr(side, role)
        return caller

    def tenant(self, name: str) -> Tenant:
        return self.own if name == "own" else self.other


def _tenant(make_client: Any, label: str) -> Tenant:
    contributor = sign_up_contributor(make_client(), name=f"Contributor {label}")
    admin = sign_up_buyer(make_client(), org_name=f"Buyer {label}")
    member_email = unique_email(f"member-{label}")
    response = admin.client.post(
        f"/api/v1/orgs/{admin.org_id}/members",
        json={"email": member_email, "password": STRONG_PASSWORD, "display_name": "Member"},
        headers=admin.headers(),
    )
    assert response.status_code == 201, response.text
    member = login(make_client(), member_email)
    key = admin.client.post(
        f"/api/v1/orgs/{admin.org_id}/api-keys",
        json={
            "name": f"key {label}",
            "scopes": [
                "catalog:read",
                "campaigns:write",
                "datasets:write",
                "licences:write",
                "downloads:read",
                "notices:read",
                "attestations:write",
            ],
        },
        headers=admin.headers(),
    )
    assert key.status_code == 201, key.text

    def caller(role: str, actor: Any) -> Caller:
        return Caller(
            role=role,
            client=actor.client,
            csrf=actor.csrf,
            user_id=actor.user_id,
            org_id=actor.org_id,
            email=actor.email,
        )

    return Tenant(
        contributor=caller("contributor", contributor),
        buyer_admin=caller("buyer_admin", admin),
        buyer_member=caller("buyer_member", member),
        api_key=Caller(
            role="api_key", client=make_client(), bearer=key.json()["secret"], org_id=admin.org_id
        ),
    )


def build_world(make_client: Any, db: Session, passwords: PasswordPolicy) -> World:
    staff: dict[str, Caller] = {}
    for kind in (UserKind.OPERATOR, UserKind.AUDITOR):
        email = unique_email(kind.value)
        accounts.create_staff_user(
            db,
            passwords,
            kind=kind,
            email=email,
            password=STRONG_PASSWORD,
            display_name=f"{kind.value.title()} {secrets.token_hex(2)}",
            actor="system:test",
        )
        db.commit()
        actor = login(make_client(), email)
        staff[kind.value] = Caller(
            role=kind.value,
            client=actor.client,
            csrf=actor.csrf,
            user_id=actor.user_id,
            email=email,
        )
    return World(
        own=_tenant(make_client, "A"),
        other=_tenant(make_client, "B"),
        operator=staff["operator"],
        auditor=staff["auditor"],
        anonymous=Caller(role="anonymous", client=make_client()),
    )
