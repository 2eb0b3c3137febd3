"""Builders of real objects through the real services (no hand-made rows)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from fastapi.testclient import TestClient

__all__ = ["STRONG_PASSWORD", "Actor", "login", "sign_up_buyer", "sign_up_contributor"]

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
    client: TestClient, *, jurisdiction: str = "DE", name: str = "Rin Test"
) -> Actor:
    email = unique_email("contrib")
    response = client.post(
        "/api/v1/accounts/contributors",
        json={
            "email": email,
            "password": STRONG_PASSWORD,
            "display_name": name,
            "date_of_birth": "1991-03-04",
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
