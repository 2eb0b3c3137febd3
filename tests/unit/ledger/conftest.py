"""Ledger fixtures: a buyer organisation and contributors created through the accounts
service, on the ``db`` session (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy.orm import Session
from tests.factories import STRONG_PASSWORD

from fairtrain.accounts import service as accounts
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.ledger import service as ledger
from fairtrain.ledger.models import JournalEntry

CHEAP_PASSWORDS = PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1)


@dataclass
class Parties:
    org_id: str
    contributors: list[str]


def new_contributor(db: Session, name: str = "Ledger Person") -> str:
    user = accounts.register_contributor(
        db,
        CHEAP_PASSWORDS,
        email=f"ledger-{secrets.token_hex(4)}@example.org",
        password=STRONG_PASSWORD,
        display_name=name,
        date_of_birth=date(1990, 5, 17),
        adult_attestation=True,
        jurisdiction="DE",
    )
    return user.id


def new_org(db: Session) -> str:
    org, _ = accounts.register_buyer_org(
        db,
        CHEAP_PASSWORDS,
        org_name="Ledger Buyer",
        email=f"buyer-{secrets.token_hex(4)}@example.org",
        password=STRONG_PASSWORD,
        display_name="Bo Buyer",
        jurisdiction="NL",
    )
    return org.id


@pytest.fixture
def parties(db: Session) -> Parties:
    return Parties(org_id=new_org(db), contributors=[new_contributor(db) for _ in range(3)])


def sell(
    db: Session,
    parties: Parties,
    *,
    order_id: str | None = None,
    shares: dict[str, int] | None = None,
    fee: int = 2000,
    currency: str = "EUR",
) -> JournalEntry:
    """Invoice and pay one licence order; by default 60/20 to two contributors + 20 fee."""
    order = order_id or f"ord_{secrets.token_hex(6)}"
    owed = (
        shares
        if shares is not None
        else {
            parties.contributors[0]: 6000,
            parties.contributors[1]: 2000,
        }
    )
    total = sum(owed.values()) + fee
    ledger.record_invoice(
        db,
        order_id=order,
        org_id=parties.org_id,
        currency=currency,
        total_minor=total,
        actor="system:test",
    )
    return ledger.record_payment(
        db,
        order_id=order,
        org_id=parties.org_id,
        currency=currency,
        total_minor=total,
        contributor_shares=owed,
        platform_fee_minor=fee,
        actor="system:test",
    )
