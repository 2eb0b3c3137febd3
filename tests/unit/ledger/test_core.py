"""The double-entry core on both databases: balance per currency, refusals, idempotency,
immutability, reversal, the licence lifecycle and the trial balance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tests.unit.ledger.conftest import Parties, new_contributor, new_org, sell

from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.errors import Conflict, DomainError, InvalidInput, NotFound
from fairtrain.ids import utcnow
from fairtrain.ledger import service as ledger
from fairtrain.ledger.models import (
    AccountKind,
    EntryKind,
    ImmutableEntry,
    JournalEntry,
    JournalLine,
)
from fairtrain.ledger.service import (
    BANK,
    PLATFORM_REVENUE,
    UNEARNED_REVENUE,
    Line,
    buyer_receivable,
    contributor_payable,
    credit,
    debit,
)

ACTOR = "system:test"


def post(db: Session, key: str, lines: list[Line], kind: EntryKind = EntryKind.INVOICE) -> Any:
    return ledger.post_entry(
        db, idempotency_key=key, kind=kind, description="test entry", lines=lines, actor=ACTOR
    )


def posted_events(db: Session) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "ledger.entry_posted")
        )
        or 0
    )


def entries(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(JournalEntry)) or 0


# -- balanced or refused -------------------------------------------------------------------


def test_a_balanced_entry_is_posted_with_its_lines_and_an_audit_event(db: Session) -> None:
    before = posted_events(db)
    entry = post(db, "k-balanced", [debit(BANK, "EUR", 500), credit(PLATFORM_REVENUE, "EUR", 500)])
    assert entry.id.startswith("jrn_")
    assert ledger.entry_lines(db, entry.id) == [
        Line(BANK, "EUR", 500, 0),
        Line(PLATFORM_REVENUE, "EUR", 0, 500),
    ]
    assert ledger.balance(db, BANK, "EUR") == 500
    assert ledger.balance(db, PLATFORM_REVENUE, "EUR") == 500
    assert posted_events(db) == before + 1
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.subject == f"journal_entry:{entry.id}")
    ).one()
    assert event.payload["kind"] == "invoice"
    assert event.payload["totals_minor"] == {"EUR": 500}
    assert verify_stored_chain(db) == (True, None, None)


def test_several_currencies_balance_each_on_its_own(db: Session) -> None:
    entry = post(
        db,
        "k-two-currencies",
        [
            debit(BANK, "EUR", 100),
            credit(PLATFORM_REVENUE, "EUR", 100),
            debit(BANK, "USD", 250),
            credit(PLATFORM_REVENUE, "USD", 250),
        ],
    )
    assert len(ledger.entry_lines(db, entry.id)) == 4
    assert ledger.balance(db, BANK, "USD") == 250


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        # Same amounts, different currencies: no silent FX.
        ([debit(BANK, "EUR", 100), credit(PLATFORM_REVENUE, "USD", 100)], "unbalanced_entry"),
        ([debit(BANK, "EUR", 100), credit(PLATFORM_REVENUE, "EUR", 99)], "unbalanced_entry"),
        (
            [
                debit(BANK, "EUR", 100),
                credit(PLATFORM_REVENUE, "EUR", 100),
                debit(BANK, "USD", 1),
            ],
            "unbalanced_entry",
        ),
        ([debit(BANK, "EUR", 100)], "unbalanced_entry"),
        ([debit(BANK, "EUR", 0), credit(PLATFORM_REVENUE, "EUR", 0)], "invalid_amount"),
        ([debit(BANK, "EUR", -5), credit(PLATFORM_REVENUE, "EUR", -5)], "invalid_amount"),
        (
            [debit(BANK, "EUR", 1.5), credit(PLATFORM_REVENUE, "EUR", 1.5)],  # type: ignore[arg-type]
            "invalid_amount",
        ),
        (
            [
                debit(BANK, "EUR", Decimal("2.0")),  # type: ignore[arg-type]
                credit(PLATFORM_REVENUE, "EUR", Decimal("2.0")),  # type: ignore[arg-type]
            ],
            "invalid_amount",
        ),
        (
            [debit(BANK, "EUR", True), credit(PLATFORM_REVENUE, "EUR", True)],
            "invalid_amount",
        ),
        (
            [Line(BANK, "EUR", 5, 5), credit(PLATFORM_REVENUE, "EUR", 0)],
            "invalid_amount",
        ),
        (
            [debit(BANK, "EUR", 10**16), credit(PLATFORM_REVENUE, "EUR", 10**16)],
            "amount_too_large",
        ),
        ([debit(BANK, "ZZZ", 1), credit(PLATFORM_REVENUE, "ZZZ", 1)], "unknown_currency"),
        ([debit("petty_cash", "EUR", 1), credit(BANK, "EUR", 1)], "unknown_account"),
        ([debit("contributor_payable", "EUR", 1), credit(BANK, "EUR", 1)], "unknown_account"),
        ([debit("bank:extra", "EUR", 1), credit(BANK, "EUR", 1)], "unknown_account"),
        (
            [debit("contributor_payable:a:b", "EUR", 1), credit(BANK, "EUR", 1)],
            "unknown_account",
        ),
        (
            [debit("contributor_payable:" + "u" * 61, "EUR", 1), credit(BANK, "EUR", 1)],
            "unknown_account",
        ),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_written(
    db: Session, lines: list[Line], code: str
) -> None:
    before = (entries(db), posted_events(db))
    with pytest.raises(InvalidInput) as refused:
        post(db, f"k-bad-{code}", lines)
    assert refused.value.code == code
    assert (entries(db), posted_events(db)) == before


def test_an_unbalanced_refusal_says_which_currency(db: Session) -> None:
    with pytest.raises(InvalidInput) as refused:
        post(db, "k-fx", [debit(BANK, "EUR", 100), credit(PLATFORM_REVENUE, "USD", 100)])
    assert refused.value.extra == {"currency": "EUR", "debit_minor": 100, "credit_minor": 0}


@pytest.mark.parametrize("key", ["", "   ", "x" * 201])
def test_an_idempotency_key_is_required(db: Session, key: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        post(db, key, [debit(BANK, "EUR", 1), credit(PLATFORM_REVENUE, "EUR", 1)])
    assert refused.value.code == "invalid_idempotency_key"


# -- idempotency ---------------------------------------------------------------------------


def test_the_same_key_and_lines_return_the_first_entry(db: Session) -> None:
    lines = [debit(BANK, "EUR", 700), credit(PLATFORM_REVENUE, "EUR", 700)]
    first = post(db, "k-retry", lines)
    events = posted_events(db)
    # A retry, even with the lines listed in another order, is the same posting.
    again = post(db, "k-retry", list(reversed(lines)))
    assert again.id == first.id
    assert posted_events(db) == events
    assert ledger.balance(db, BANK, "EUR") == 700


@pytest.mark.parametrize(
    ("lines", "kind"),
    [
        ([debit(BANK, "EUR", 701), credit(PLATFORM_REVENUE, "EUR", 701)], EntryKind.INVOICE),
        ([debit(BANK, "USD", 700), credit(PLATFORM_REVENUE, "USD", 700)], EntryKind.INVOICE),
        ([debit(BANK, "EUR", 700), credit(PLATFORM_REVENUE, "EUR", 700)], EntryKind.PAYMENT),
    ],
)
def test_the_same_key_with_other_lines_is_a_conflict(
    db: Session, lines: list[Line], kind: EntryKind
) -> None:
    first = post(db, "k-reused", [debit(BANK, "EUR", 700), credit(PLATFORM_REVENUE, "EUR", 700)])
    with pytest.raises(Conflict) as refused:
        post(db, "k-reused", lines, kind=kind)
    assert refused.value.code == "idempotency_key_reused"
    assert refused.value.extra == {"entry_id": first.id}
    assert ledger.balance(db, BANK, "EUR") == 700


def test_the_database_itself_refuses_a_second_entry_with_a_key(db: Session) -> None:
    first = post(db, "k-unique", [debit(BANK, "EUR", 1), credit(PLATFORM_REVENUE, "EUR", 1)])
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(
            insert(JournalEntry).values(
                id="jrn_duplicate",
                idempotency_key=first.idempotency_key,
                kind="invoice",
                description="bypassing the service",
                lines_sha256="0" * 64,
                actor=ACTOR,
                posted_at=utcnow(),
            )
        )


def test_the_database_refuses_a_line_with_two_sides_or_none(db: Session) -> None:
    entry = post(db, "k-check", [debit(BANK, "EUR", 1), credit(PLATFORM_REVENUE, "EUR", 1)])
    for debit_minor, credit_minor in ((3, 3), (0, 0), (-1, 0)):
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(
                insert(JournalLine).values(
                    entry_id=entry.id,
                    account_code=BANK,
                    currency="EUR",
                    debit_minor=debit_minor,
                    credit_minor=credit_minor,
                )
            )


# -- immutability and reversal -------------------------------------------------------------


def test_posted_entries_cannot_be_changed_or_deleted(db: Session) -> None:
    entry = post(db, "k-frozen", [debit(BANK, "EUR", 9), credit(PLATFORM_REVENUE, "EUR", 9)])
    db.commit()
    entry.description = "rewritten history"
    with pytest.raises(ImmutableEntry):
        db.flush()
    db.rollback()
    stored = db.get(JournalEntry, entry.id)
    assert stored is not None and stored.description == "test entry"
    line = db.scalars(select(JournalLine).where(JournalLine.entry_id == entry.id)).first()
    assert line is not None
    db.delete(line)
    with pytest.raises(ImmutableEntry):
        db.flush()
    db.rollback()


def test_a_reversal_mirrors_the_entry_once(db: Session) -> None:
    original = post(db, "k-wrong", [debit(BANK, "EUR", 40), credit(PLATFORM_REVENUE, "EUR", 40)])
    reversal = ledger.reverse_entry(db, original.id, actor=ACTOR, reason="typo")
    assert reversal.kind == EntryKind.REVERSAL and reversal.reverses_id == original.id
    assert ledger.entry_lines(db, reversal.id) == [
        Line(BANK, "EUR", 0, 40),
        Line(PLATFORM_REVENUE, "EUR", 40, 0),
    ]
    assert ledger.balance(db, BANK, "EUR") == 0
    assert ledger.balance(db, PLATFORM_REVENUE, "EUR") == 0
    # Once: reversing again returns the same reversal, and a reversal is not reversed.
    assert ledger.reverse_entry(db, original.id, actor=ACTOR, reason="again").id == reversal.id
    with pytest.raises(Conflict) as refused:
        ledger.reverse_entry(db, reversal.id, actor=ACTOR, reason="undo the undo")
    assert refused.value.code == "reversal_not_reversible"
    with pytest.raises(NotFound):
        ledger.reverse_entry(db, "jrn_nope", actor=ACTOR, reason="x")


# -- balances and the trial balance --------------------------------------------------------


def test_account_kinds_and_normal_balances(db: Session, parties: Parties) -> None:
    assert ledger.account_kind(BANK) == AccountKind.ASSET
    assert ledger.account_kind(buyer_receivable("org_x")) == AccountKind.ASSET
    assert ledger.account_kind(contributor_payable("usr_x")) == AccountKind.LIABILITY
    assert ledger.account_kind(PLATFORM_REVENUE) == AccountKind.REVENUE
    assert ledger.balance(db, contributor_payable("usr_never_paid"), "EUR") == 0
    with pytest.raises(InvalidInput):
        ledger.balance(db, "suspense", "EUR")


def test_trial_balance_totals_agree_per_currency(db: Session, parties: Parties) -> None:
    sell(db, parties)
    sell(db, parties, currency="GBP", shares={parties.contributors[2]: 999}, fee=1)
    result = ledger.trial_balance(db)
    by_currency = {c.currency: c for c in result.currencies}
    assert set(by_currency) == {"EUR", "GBP"}
    for block in result.currencies:
        assert block.debit_minor == block.credit_minor
        assert block.debit_minor == sum(a.debit_minor for a in block.accounts)
    eur = {a.account: a for a in by_currency["EUR"].accounts}
    assert eur[BANK].balance_minor == 10000
    assert eur[buyer_receivable(parties.org_id)].balance_minor == 0
    assert eur[UNEARNED_REVENUE].balance_minor == 0
    assert eur[contributor_payable(parties.contributors[0])].balance_minor == 6000
    assert eur[contributor_payable(parties.contributors[1])].balance_minor == 2000
    assert eur[PLATFORM_REVENUE].balance_minor == 2000
    gbp = {a.account: a for a in by_currency["GBP"].accounts}
    assert gbp[contributor_payable(parties.contributors[2])].balance_minor == 999


def test_trial_balance_refuses_a_ledger_written_around_the_service(
    db: Session, parties: Parties
) -> None:
    entry = sell(db, parties)
    db.execute(
        insert(JournalLine).values(
            entry_id=entry.id, account_code=BANK, currency="EUR", debit_minor=1, credit_minor=0
        )
    )
    with pytest.raises(ledger.LedgerOutOfBalance, match="EUR"):
        ledger.trial_balance(db)


# -- the licence lifecycle -----------------------------------------------------------------


def test_invoice_then_payment_books_every_account(db: Session, parties: Parties) -> None:
    a, b, _ = parties.contributors
    invoice = ledger.record_invoice(
        db,
        order_id="ord_life",
        org_id=parties.org_id,
        currency="eur",
        total_minor=12500,
        actor=ACTOR,
    )
    assert ledger.balance(db, buyer_receivable(parties.org_id), "EUR") == 12500
    assert ledger.balance(db, UNEARNED_REVENUE, "EUR") == 12500
    payment = ledger.record_payment(
        db,
        order_id="ord_life",
        org_id=parties.org_id,
        currency="EUR",
        total_minor=12500,
        contributor_shares={a: 7000, b: 3000},
        platform_fee_minor=2500,
        actor=ACTOR,
    )
    assert (invoice.kind, payment.kind) == (EntryKind.INVOICE, EntryKind.PAYMENT)
    assert payment.reference == "ord_life"
    assert ledger.balance(db, BANK, "EUR") == 12500
    assert ledger.balance(db, buyer_receivable(parties.org_id), "EUR") == 0
    assert ledger.balance(db, UNEARNED_REVENUE, "EUR") == 0
    assert ledger.balance(db, contributor_payable(a), "EUR") == 7000
    assert ledger.balance(db, contributor_payable(b), "EUR") == 3000
    assert ledger.balance(db, PLATFORM_REVENUE, "EUR") == 2500


def test_lifecycle_calls_are_idempotent_per_order(db: Session, parties: Parties) -> None:
    first = sell(db, parties, order_id="ord_twice")
    events = posted_events(db)
    assert sell(db, parties, order_id="ord_twice").id == first.id
    assert posted_events(db) == events
    assert ledger.balance(db, contributor_payable(parties.contributors[0]), "EUR") == 6000


def test_a_retried_payment_with_other_shares_is_a_conflict(db: Session, parties: Parties) -> None:
    a, b, _ = parties.contributors
    sell(db, parties, order_id="ord_other", shares={a: 6000, b: 2000})
    with pytest.raises(Conflict) as refused:
        ledger.record_payment(
            db,
            order_id="ord_other",
            org_id=parties.org_id,
            currency="EUR",
            total_minor=10000,
            contributor_shares={a: 2000, b: 6000},
            platform_fee_minor=2000,
            actor=ACTOR,
        )
    assert refused.value.code == "idempotency_key_reused"


def _pay(db: Session, parties: Parties, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "order_id": "ord_check",
        "org_id": parties.org_id,
        "currency": "EUR",
        "total_minor": 1000,
        "contributor_shares": {parties.contributors[0]: 800},
        "platform_fee_minor": 200,
        "actor": ACTOR,
    } | overrides
    return ledger.record_payment(db, **arguments)


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"platform_fee_minor": 199}, InvalidInput, "shares_do_not_add_up"),
        ({"contributor_shares": {}}, InvalidInput, "shares_do_not_add_up"),
        ({"contributor_shares": {"usr_ghost": 800}}, InvalidInput, "unknown_contributor"),
        ({"platform_fee_minor": -1}, InvalidInput, "invalid_amount"),
        ({"total_minor": 0}, InvalidInput, "invalid_amount"),
        ({"total_minor": 10.5}, InvalidInput, "invalid_amount"),
        ({"currency": "XYZ"}, InvalidInput, "unknown_currency"),
        ({"order_id": "ord_never_invoiced"}, NotFound, "invoice_not_found"),
        ({"currency": "USD"}, Conflict, "payment_does_not_match_invoice"),
        (
            {"total_minor": 1001, "platform_fee_minor": 201},
            Conflict,
            "payment_does_not_match_invoice",
        ),
    ],
)
def test_bad_payments_are_refused(
    db: Session,
    parties: Parties,
    overrides: dict[str, Any],
    error: type[DomainError],
    code: str,
) -> None:
    ledger.record_invoice(
        db,
        order_id="ord_check",
        org_id=parties.org_id,
        currency="EUR",
        total_minor=1000,
        actor=ACTOR,
    )
    before = entries(db)
    with pytest.raises(error) as refused:
        _pay(db, parties, **overrides)
    assert refused.value.code == code
    assert entries(db) == before


def test_a_payment_from_another_organisation_does_not_settle_the_invoice(
    db: Session, parties: Parties
) -> None:

    ledger.record_invoice(
        db,
        order_id="ord_check",
        org_id=parties.org_id,
        currency="EUR",
        total_minor=1000,
        actor=ACTOR,
    )
    with pytest.raises(Conflict) as refused:
        _pay(db, parties, org_id=new_org(db))
    assert refused.value.code == "payment_does_not_match_invoice"


def test_a_zero_share_books_nothing_for_that_contributor(db: Session, parties: Parties) -> None:
    a, b, _ = parties.contributors
    payment = sell(db, parties, shares={a: 500, b: 0}, fee=0)
    accounts = {line.account for line in ledger.entry_lines(db, payment.id)}
    assert contributor_payable(b) not in accounts
    assert PLATFORM_REVENUE not in accounts
    assert ledger.balance(db, contributor_payable(a), "EUR") == 500


def test_an_unknown_org_cannot_be_invoiced(db: Session) -> None:
    with pytest.raises(NotFound) as refused:
        ledger.record_invoice(
            db, order_id="ord_x", org_id="org_ghost", currency="EUR", total_minor=5, actor=ACTOR
        )
    assert refused.value.code == "org_not_found"


def test_only_contributors_are_owed(db: Session, parties: Parties) -> None:
    ledger.record_invoice(
        db,
        order_id="ord_check",
        org_id=parties.org_id,
        currency="EUR",
        total_minor=1000,
        actor=ACTOR,
    )
    buyer = db.scalars(
        select(AuditEvent.actor).where(AuditEvent.subject == f"org:{parties.org_id}")
    )
    buyer_id = next(iter(buyer)).removeprefix("user:")
    with pytest.raises(InvalidInput) as refused:
        _pay(db, parties, contributor_shares={buyer_id: 800})
    assert refused.value.code == "unknown_contributor"


def test_cancelling_an_unpaid_invoice_reverses_it(db: Session, parties: Parties) -> None:
    invoice = ledger.record_invoice(
        db,
        order_id="ord_cancel",
        org_id=parties.org_id,
        currency="EUR",
        total_minor=3000,
        actor=ACTOR,
    )
    reversal = ledger.cancel_invoice(db, order_id="ord_cancel", actor=ACTOR, reason="buyer left")
    assert reversal.reverses_id == invoice.id
    assert ledger.balance(db, buyer_receivable(parties.org_id), "EUR") == 0
    assert ledger.balance(db, UNEARNED_REVENUE, "EUR") == 0
    # Idempotent; and a cancelled invoice can be neither paid nor re-recorded.
    assert ledger.cancel_invoice(db, order_id="ord_cancel", actor=ACTOR).id == reversal.id
    with pytest.raises(Conflict) as paid:
        _pay(db, parties, order_id="ord_cancel", total_minor=3000, platform_fee_minor=2200)
    assert paid.value.code == "invoice_cancelled"
    with pytest.raises(Conflict) as again:
        ledger.record_invoice(
            db,
            order_id="ord_cancel",
            org_id=parties.org_id,
            currency="EUR",
            total_minor=3000,
            actor=ACTOR,
        )
    assert again.value.code == "invoice_cancelled"


def test_a_paid_invoice_cannot_be_cancelled(db: Session, parties: Parties) -> None:
    sell(db, parties, order_id="ord_paid")
    with pytest.raises(Conflict) as refused:
        ledger.cancel_invoice(db, order_id="ord_paid", actor=ACTOR)
    assert refused.value.code == "invoice_paid"
    with pytest.raises(NotFound) as missing:
        ledger.cancel_invoice(db, order_id="ord_missing", actor=ACTOR)
    assert missing.value.code == "invoice_not_found"


def test_payable_balances_and_statement_run_per_currency(db: Session, parties: Parties) -> None:
    a = parties.contributors[0]
    sell(db, parties, shares={a: 1500}, fee=100)
    sell(db, parties, shares={a: 250}, fee=50)
    sell(db, parties, shares={a: 700}, fee=0, currency="USD")
    assert ledger.payable_balances(db, "EUR") == {a: 1750}
    lines = ledger.statement(db, a)
    assert [(line.currency, line.amount_minor, line.balance_minor) for line in lines] == [
        ("EUR", 1500, 1500),
        ("EUR", 250, 1750),
        ("USD", 700, 700),
    ]
    assert all(line.kind == EntryKind.PAYMENT for line in lines)
    assert [line.amount_minor for line in ledger.statement(db, a, currency="usd")] == [700]
    assert ledger.statement(db, new_contributor(db)) == []
