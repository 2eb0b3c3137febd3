"""Builders of real objects through the real services (no hand-made rows)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import UserKind
from fairtrain.accounts.passwords import PasswordPolicy

__all__ = [
    "STRONG_PASSWORD",
    "Actor",
    "list_asset",
    "login",
    "share_profile",
    "sign_up_buyer",
    "sign_up_contributor",
    "sign_up_staff",
]

STRONG_PASSWORD = "quartz-lantern-orbit-meadow-41"


@dataclass
class Actor:
    """A logged-in user as the tests drive them: their client, ids and CSRF token."""

    client: TestClient
    user_id: str
    email: str
    kind: str
    csrf: str
    org_id: str | None = None

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


def unique_email(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.org"


def login(client: TestClient, email: str, password: str = STRONG_PASSWORD) -> Actor:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Actor(
        client=client,
        user_id=body["id"],
        email=email,
        kind=body["kind"],
        csrf=body["csrf_token"],
        org_id=body["org_id"],
    )


def sign_up_contributor(
    client: TestClient,
    *,
    jurisdiction: str = "DE",
    name: str = "Rin Test",
    born: str = "1991-03-04",
) -> Actor:
    email = unique_email("contrib")
    response = client.post(
        "/api/v1/accounts/contributors",
        json={
            "email": email,
            "password": STRONG_PASSWORD,
            "display_name": name,
            "date_of_birth": born,
            "adult_attestation": True,
            "jurisdiction": jurisdiction,
        },
    )
    assert response.status_code == 201, response.text
    return login(client, email)


def sign_up_buyer(client: TestClient, *, org_name: str = "Acme Speech") -> Actor:
    email = unique_email("buyer")
    response = client.post(
        "/api/v1/accounts/buyers",
        json={
            "org_name": org_name,
            "email": email,
            "password": STRONG_PASSWORD,
            "display_name": "Bo Buyer",
            "jurisdiction": "NL",
        },
    )
    assert response.status_code == 201, response.text
    return login(client, email)


def adult_birthday(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def list_asset(
    owner: Actor,
    content: bytes,
    filename: str,
    *,
    terms: dict[str, object] | None = None,
) -> str:
    """Upload, approve (the protective default terms) and optionally set other terms;
    returns the listed asset's id. Jobs run at once in tests, so it is ready to approve."""
    uploaded = owner.client.post(
        "/api/v1/uploads", content=content, params={"filename": filename}, headers=owner.headers()
    )
    assert uploaded.status_code == 201, uploaded.text
    asset_id: str = uploaded.json()["id"]
    approved = owner.client.post(f"/api/v1/assets/{asset_id}/approve", headers=owner.headers())
    assert approved.status_code == 200, approved.text
    if terms is not None:
        changed = owner.client.put(
            f"/api/v1/assets/{asset_id}/policy", json=terms, headers=owner.headers()
        )
        assert changed.status_code == 200, changed.text
    return asset_id


def share_profile(owner: Actor, **fields: object) -> None:
    """Share demographics (age band from the date of birth, gender, region …)."""
    body = {"share_age_band": False, "share_region": False, "languages": []} | fields
    response = owner.client.put("/api/v1/me/profile", json=body, headers=owner.headers())
    assert response.status_code == 200, response.text


def sign_up_staff(client: TestClient, db: Session, passwords: PasswordPolicy, kind: str) -> Actor:
    """An operator or auditor (made as the CLI makes them), logged in."""
    email = unique_email(kind)
    accounts.create_staff_user(
        db,
        passwords,
        kind=UserKind(kind),
        email=email,
        password=STRONG_PASSWORD,
        display_name=f"{kind.title()} {secrets.token_hex(2)}",
        actor="system:test",
    )
    db.commit()
    return login(client, email)
