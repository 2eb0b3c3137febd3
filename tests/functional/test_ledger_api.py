"""Money through HTTP, end to end: a sale booked by the ledger's lifecycle functions (as
licensing books it), the contributor's statement and payout details, an operator's
payout run (create, read, export, mark paid), the trial balance; and bad input refused
with a specific code, nothing written, and the audit log still verifying."""

from __future__ import annotations

import csv
import io
import logging
import secrets
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sepaxml
import xmlschema
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.factories import (
    STRONG_PASSWORD,
    Actor,
    login,
    sign_up_buyer,
    sign_up_contributor,
    unique_email,
)

from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import UserKind
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.ledger import service as ledger
from fairtrain.ledger.models import JournalEntry, PayoutBatch, PayoutDetails
from fairtrain.ledger.payouts import PAIN001_NAMESPACE
from fairtrain.logs import JsonFormatter

IBAN = "DE89370400440532013000"
OTHER_IBAN = "FR1420041010050500013M02606"
PLATFORM_IBAN = "GB82WEST12345698765432"
NS = {"p": PAIN001_NAMESPACE}
SCHEMA = xmlschema.XMLSchema(Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd")


def staff(db: Session, app: Any, make_client: Any, kind: UserKind) -> Actor:
    email = unique_email(kind.value)
    accounts.create_staff_user(
        db,
        app.state.passwords,
        kind=kind,
        email=email,
        password=STRONG_PASSWORD,
        display_name=f"{kind.value.title()} Person",
        actor="system:test",
    )
    db.commit()
    return login(make_client(), email)


@pytest.fixture
def operator(db: Session, app: Any, make_client: Any) -> Actor:
    return staff(db, app, make_client, UserKind.OPERATOR)


@pytest.fixture
def auditor(db: Session, app: Any, make_client: Any) -> Actor:
    return staff(db, app, make_client, UserKind.AUDITOR)


@pytest.fixture
def ada(make_client: Any) -> Actor:
    return sign_up_contributor(make_client(), name="Ada Payee")


@pytest.fixture
def bea(make_client: Any) -> Actor:
    return sign_up_contributor(make_client(), name="Bea Payee")


@pytest.fixture
def buyer(make_client: Any) -> Actor:
    return sign_up_buyer(make_client(), org_name="Acme Speech")


def sell(
    db: Session, buyer: Actor, shares: dict[str, int], *, fee: int, currency: str = "EUR"
) -> str:
    """One licence order invoiced and paid, committed; returns the order id."""
    assert buyer.org_id
    order = f"ord_{secrets.token_hex(6)}"
    total = sum(shares.values()) + fee
    ledger.record_invoice(
        db,
        order_id=order,
        org_id=buyer.org_id,
        currency=currency,
        total_minor=total,
        actor="system:licensing",
    )
    ledger.record_payment(
        db,
        order_id=order,
        org_id=buyer.org_id,
        currency=currency,
        total_minor=total,
        contributor_shares=shares,
        platform_fee_minor=fee,
        actor="system:licensing",
    )
    db.commit()
    return order


def put_details(actor: Actor, body: dict[str, Any]) -> Any:
    return actor.client.put("/api/v1/me/payout-details", json=body, headers=actor.headers())


def counts(db: Session) -> tuple[int, ...]:
    db.expire_all()
    return tuple(
        db.scalar(select(func.count()).select_from(table)) or 0
        for table in (JournalEntry, PayoutBatch, PayoutDetails, AuditEvent)
    )


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    return body


# -- contributors --------------------------------------------------------------------------


def test_payout_details_are_checked_and_shown_masked(
    ada: Actor, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    missing = ada.client.get("/api/v1/me/payout-details")
    assert_problem(missing, 404, "payout_details_not_found")

    saved = put_details(
        ada, {"account_holder": " Ada  Payee ", "iban": "de89 3704 0044 0532 0130 00"}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["account_holder"] == "Ada Payee"
    assert saved.json()["iban_masked"] == "DE** **** **** **** **30 00"
    assert saved.json()["iban_country"] == "DE"
    shown = ada.client.get("/api/v1/me/payout-details")
    assert shown.status_code == 200
    assert IBAN not in shown.text and "0532" not in shown.text
    assert shown.json()["iban_masked"] == saved.json()["iban_masked"]
    # Neither the logs nor the audit log ever carry the account number.
    assert caplog.records, "expected access log records"
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    events = db.scalars(
        select(AuditEvent.payload).where(AuditEvent.subject == f"user:{ada.user_id}")
    )
    for text in (logged, repr(list(events))):
        assert "370400440532013000" not in text and "3704 0044" not in text
    assert verify_stored_chain(db) == (True, None, None)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"account_holder": "Ada Payee", "iban": "DE88370400440532013000"}, "invalid_iban"),
        ({"account_holder": "Ada Payee", "iban": "not an iban"}, "invalid_iban"),
        ({"account_holder": "", "iban": IBAN}, "invalid_account_holder"),
        ({"account_holder": "Ada\u202e", "iban": IBAN}, "invalid_account_holder"),
        ({"account_holder": "Ada Payee"}, "missing_field"),
        ({"account_holder": "Ada Payee", "iban": IBAN, "bic": "X"}, "unknown_field"),
        ({"account_holder": "Ada Payee", "iban": "D" * 65}, "invalid_input"),
    ],
)
def test_bad_payout_details_are_refused_and_nothing_is_written(
    ada: Actor, db: Session, body: dict[str, Any], code: str
) -> None:
    before = counts(db)
    assert_problem(put_details(ada, body), 422, code)
    assert counts(db) == before
    assert_problem(ada.client.get("/api/v1/me/payout-details"), 404, "payout_details_not_found")
    assert verify_stored_chain(db) == (True, None, None)


def test_the_statement_lists_every_line_with_a_running_balance(
    ada: Actor, bea: Actor, buyer: Actor, operator: Actor, db: Session
) -> None:
    empty = ada.client.get("/api/v1/me/statement")
    assert empty.status_code == 200
    assert empty.json() == {"user_id": ada.user_id, "lines": [], "balances": []}

    sell(db, buyer, {ada.user_id: 1500, bea.user_id: 700}, fee=550)
    sell(db, buyer, {ada.user_id: 320}, fee=80)
    sell(db, buyer, {ada.user_id: 999}, fee=1, currency="GBP")
    assert put_details(ada, {"account_holder": "Ada Payee", "iban": IBAN}).status_code == 200
    created = operator.client.post(
        "/api/v1/payouts", json={"currency": "EUR"}, headers=operator.headers()
    )
    assert created.status_code == 201, created.text

    statement = ada.client.get("/api/v1/me/statement").json()
    assert [
        (line["kind"], line["currency"], line["amount_minor"], line["balance_minor"])
        for line in statement["lines"]
    ] == [
        ("payment", "EUR", 1500, 1500),
        ("payment", "EUR", 320, 1820),
        ("payment", "GBP", 999, 999),
        ("payout_batch", "EUR", -1820, 0),
    ]
    assert statement["balances"] == [
        {"currency": "EUR", "amount_minor": 0},
        {"currency": "GBP", "amount_minor": 999},
    ]
    assert all(line["description"] and line["posted_at"] for line in statement["lines"])
    # Bea sees only her own line.
    theirs = bea.client.get("/api/v1/me/statement").json()
    assert [line["amount_minor"] for line in theirs["lines"]] == [700]

    only_gbp = ada.client.get("/api/v1/me/statement", params={"currency": "gbp"}).json()
    assert [line["currency"] for line in only_gbp["lines"]] == ["GBP"]

    as_csv = ada.client.get("/api/v1/me/statement", params={"format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["currency"], r["amount"], r["balance"]) for r in rows] == [
        ("EUR", "15.00", "15.00"),
        ("EUR", "3.20", "18.20"),
        ("GBP", "9.99", "9.99"),
        ("EUR", "-18.20", "0.00"),
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [({"format": "xml"}, "unknown_format"), ({"currency": "XXX"}, "unknown_currency")],
)
def test_bad_statement_requests_are_refused(ada: Actor, params: dict[str, str], code: str) -> None:
    assert_problem(ada.client.get("/api/v1/me/statement", params=params), 422, code)


# -- operators -----------------------------------------------------------------------------


def test_a_payout_run_end_to_end(
    ada: Actor, bea: Actor, buyer: Actor, operator: Actor, app: Any, db: Session
) -> None:
    sell(db, buyer, {ada.user_id: 2500, bea.user_id: 400}, fee=725)
    assert put_details(ada, {"account_holder": "Ada & <Payee>", "iban": IBAN}).status_code == 200
    assert put_details(bea, {"account_holder": "Bea Payee", "iban": OTHER_IBAN}).status_code == 200

    created = operator.client.post(
        "/api/v1/payouts", json={"currency": "eur"}, headers=operator.headers()
    )
    assert created.status_code == 201, created.text
    batch = created.json()
    assert (batch["currency"], batch["state"], batch["item_count"]) == ("EUR", "sent", 1)
    assert batch["total_minor"] == 2500
    assert batch["items"][0]["user_id"] == ada.user_id
    assert batch["items"][0]["iban_masked"] == "DE** **** **** **** **30 00"
    assert batch["skipped"] == [
        {"user_id": bea.user_id, "balance_minor": 400, "reason": "below_minimum"}
    ]
    assert IBAN not in created.text

    listed = operator.client.get("/api/v1/payouts").json()
    assert [b["id"] for b in listed] == [batch["id"]]
    detail = operator.client.get(f"/api/v1/payouts/{batch['id']}").json()
    assert detail["items"] == batch["items"]

    table = operator.client.get(f"/api/v1/payouts/{batch['id']}/export", params={"format": "csv"})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [(r["iban"], r["amount"], r["account_holder"]) for r in rows] == [
        (IBAN, "25.00", "Ada & <Payee>")
    ]

    app.state.settings = app.state.settings.model_copy(
        update={"payout_debtor_iban": PLATFORM_IBAN, "payout_debtor_bic": "NWBKGB2L"}
    )
    pain = operator.client.get(
        f"/api/v1/payouts/{batch['id']}/export", params={"format": "pain001"}
    )
    assert pain.status_code == 200, pain.text
    assert pain.headers["content-type"].startswith("application/xml")
    assert f"{batch['id']}.pain001.xml" in pain.headers["content-disposition"]
    SCHEMA.validate(pain.text)
    root = ET.fromstring(pain.content)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None
    assert header.findtext("p:NbOfTxs", namespaces=NS) == str(len(rows))
    assert Decimal(header.findtext("p:CtrlSum", namespaces=NS) or "") == sum(
        Decimal(r["amount"]) for r in rows
    )
    assert root.findtext(".//p:Cdtr/p:Nm", namespaces=NS) == "Ada & <Payee>"
    assert root.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == PLATFORM_IBAN

    paid = operator.client.post(
        f"/api/v1/payouts/{batch['id']}/mark-paid", headers=operator.headers()
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["state"] == "paid" and paid.json()["paid_entry_id"]
    assert paid.json()["paid_by"] == f"user:{operator.user_id}"

    # The money trail: the buyer paid 36.25; Ada was paid 25.00; Bea is owed 4.00 and
    # the platform kept its 7.25.
    assert ledger.balance(db, "bank", "EUR") == 3625 - 2500
    assert ledger.balance(db, f"contributor_payable:{bea.user_id}", "EUR") == 400
    assert ledger.balance(db, "payout_clearing", "EUR") == 0
    actions = set(db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("ledger.%"))))
    assert {
        "ledger.entry_posted",
        "ledger.payout_details_changed",
        "ledger.payout_batch_created",
        "ledger.payout_batch_exported",
        "ledger.payout_batch_paid",
    } <= actions
    assert verify_stored_chain(db) == (True, None, None)


def test_payout_refusals_write_nothing(
    ada: Actor, buyer: Actor, operator: Actor, db: Session
) -> None:
    before = counts(db)
    nothing = operator.client.post(
        "/api/v1/payouts", json={"currency": "EUR"}, headers=operator.headers()
    )
    assert assert_problem(nothing, 409, "nothing_to_pay")["skipped"] == []
    assert counts(db) == before

    sell(db, buyer, {ada.user_id: 5000}, fee=0)
    before = counts(db)
    # Owed enough, but without payout details: skipped, and the reason is given.
    skipped = operator.client.post(
        "/api/v1/payouts", json={"currency": "EUR"}, headers=operator.headers()
    )
    body = assert_problem(skipped, 409, "nothing_to_pay")
    assert body["skipped"] == [
        {"user_id": ada.user_id, "balance_minor": 5000, "reason": "no_payout_details"}
    ]
    for payload, code in (
        ({"currency": "EURO"}, "unknown_currency"),
        ({"currency": "ZZZ"}, "unknown_currency"),
        ({}, "missing_field"),
        ({"currency": "EUR", "minimum": 1}, "unknown_field"),
    ):
        response = operator.client.post("/api/v1/payouts", json=payload, headers=operator.headers())
        assert_problem(response, 422, code)
    for method, path in (
        ("GET", "/api/v1/payouts/pob_missing"),
        ("GET", "/api/v1/payouts/pob_missing/export"),
        ("POST", "/api/v1/payouts/pob_missing/mark-paid"),
    ):
        response = operator.client.request(method, path, headers=operator.headers())
        assert_problem(response, 404, "batch_not_found")
    assert counts(db) == before

    assert put_details(ada, {"account_holder": "Ada Payee", "iban": IBAN}).status_code == 200
    batch_id = operator.client.post(
        "/api/v1/payouts", json={"currency": "EUR"}, headers=operator.headers()
    ).json()["id"]
    # Right after a batch there is nothing left to pay: the same balances never twice.
    again = operator.client.post(
        "/api/v1/payouts", json={"currency": "EUR"}, headers=operator.headers()
    )
    assert_problem(again, 409, "nothing_to_pay")
    before = counts(db)
    export = f"/api/v1/payouts/{batch_id}/export"
    assert_problem(
        operator.client.get(export, params={"format": "xlsx"}), 422, "unknown_export_format"
    )
    # No platform account configured: a pain.001 file cannot say who pays.
    assert_problem(
        operator.client.get(export, params={"format": "pain001"}),
        409,
        "payout_debtor_not_configured",
    )
    assert counts(db) == before
    mark = f"/api/v1/payouts/{batch_id}/mark-paid"
    assert operator.client.post(mark, headers=operator.headers()).status_code == 200
    before = counts(db)
    assert_problem(
        operator.client.post(mark, headers=operator.headers()), 409, "batch_already_paid"
    )
    assert counts(db) == before
    assert verify_stored_chain(db) == (True, None, None)


def test_trial_balance_for_operators_and_auditors(
    ada: Actor, buyer: Actor, operator: Actor, auditor: Actor, db: Session
) -> None:
    sell(db, buyer, {ada.user_id: 800}, fee=200)
    sell(db, buyer, {ada.user_id: 90}, fee=10, currency="USD")
    for reader in (operator, auditor):
        response = reader.client.get("/api/v1/ledger/trial-balance")
        assert response.status_code == 200, response.text
        currencies = {c["currency"]: c for c in response.json()["currencies"]}
        assert set(currencies) == {"EUR", "USD"}
        for block in currencies.values():
            assert block["debit_minor"] == block["credit_minor"]
        eur = {a["account"]: a for a in currencies["EUR"]["accounts"]}
        assert eur["bank"] == {
            "account": "bank",
            "kind": "asset",
            "debit_minor": 1000,
            "credit_minor": 0,
            "balance_minor": 1000,
        }
        assert eur[f"contributor_payable:{ada.user_id}"]["balance_minor"] == 800
        assert eur["platform_revenue"]["kind"] == "revenue"
    refused = ada.client.get("/api/v1/ledger/trial-balance")
    assert_problem(refused, 403, "role_forbidden")
