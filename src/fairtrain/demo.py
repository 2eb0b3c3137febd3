"""Demo data for ``fairtrain serve --demo``: idempotent, so restarts do not duplicate it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import User, UserKind
from fairtrain.accounts.passwords import PasswordPolicy

__all__ = ["DEMO_LOGINS", "DemoLogin", "seed_demo"]


@dataclass(frozen=True, slots=True)
class DemoLogin:
    role: str
    email: str
    password: str
    display_name: str


# Public demo credentials: demo mode only ever runs on a local machine with local data.
DEMO_LOGINS = (
    DemoLogin("contributor", "ada@demo.example.org", "demo-violet-harbour-42", "Ada Okafor"),
    DemoLogin("buyer", "bea@demo.example.org", "demo-copper-lantern-17", "Bea Lindqvist"),
    DemoLogin("operator", "otto@demo.example.org", "demo-granite-meadow-93", "Otto Reyes"),
    DemoLogin("auditor", "aud@demo.example.org", "demo-silver-estuary-58", "Aud Nakamura"),
)


def _exists(session: Session, email: str) -> bool:
    return session.scalar(select(User.id).where(User.email == email)) is not None


def seed_demo(session: Session, passwords: PasswordPolicy) -> list[DemoLogin]:
    """Create the demo accounts that are missing; returns all demo logins."""
    contributor, buyer, operator, auditor = DEMO_LOGINS
    if not _exists(session, contributor.email):
        accounts.register_contributor(
            session,
            passwords,
            email=contributor.email,
            password=contributor.password,
            display_name=contributor.display_name,
            date_of_birth=date(1990, 5, 17),
            adult_attestation=True,
            jurisdiction="DE",
        )
    if not _exists(session, buyer.email):
        accounts.register_buyer_org(
            session,
            passwords,
            org_name="Northwind Speech Lab",
            email=buyer.email,
            password=buyer.password,
            display_name=buyer.display_name,
            jurisdiction="NL",
        )
    for login, kind in ((operator, UserKind.OPERATOR), (auditor, UserKind.AUDITOR)):
        if not _exists(session, login.email):
            accounts.create_staff_user(
                session,
                passwords,
                kind=kind,
                email=login.email,
                password=login.password,
                display_name=login.display_name,
                actor="system:demo",
            )
    return list(DEMO_LOGINS)
