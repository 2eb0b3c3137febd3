"""Real races on PostgreSQL: two transactions, two connections, one of them held open
while the other is seen (in ``pg_stat_activity``) waiting on its lock.

These tests commit, so they run in a schema of their own (created and dropped here)
instead of the suite's rolled-back transaction.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from tests.unit.ledger.conftest import new_contributor, new_org

import fairtrain.models  # registers every table
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.db import Base, make_engine, make_session_factory
from fairtrain.errors import Conflict
from fairtrain.ledger import service as ledger
from fairtrain.ledger.models import EntryKind, JournalEntry, LedgerAccount, PayoutBatch
from fairtrain.ledger.service import BANK, PLATFORM_REVENUE, contributor_payable, credit, debit

pytestmark = pytest.mark.postgres

_TABLES = fairtrain.models
POSTGRES_URL = os.environ.get(
    "FAIRTRAIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ACTOR = "system:test"


@pytest.fixture
def race_engine() -> Iterator[Engine]:
    schema = f"ft_ledger_race_{secrets.token_hex(4)}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        Base.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def race(
    factory: sessionmaker[Session],
    first: Callable[[Session], Any],
    second: Callable[[Session], Any],
) -> tuple[Any, Any]:
    """Run ``first`` and hold its transaction open; run ``second`` until PostgreSQL shows
    it waiting on a lock; then let ``first`` commit. Returns both results (or errors)."""
    results: dict[str, Any] = {}
    first_done, release, second_pid = threading.Event(), threading.Event(), []

    def run_first() -> None:
        with factory() as session, session.begin():
            results["first"] = first(session)
            first_done.set()
            assert release.wait(20)

    def run_second() -> None:
        assert first_done.wait(20)
        with factory() as session:
            try:
                with session.begin():
                    second_pid.append(session.scalar(text("SELECT pg_backend_pid()")))
                    results["second"] = second(session)
            except Exception as error:  # the caller asserts on it
                results["second"] = error

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    try:
        _wait_until_blocked(factory, second_pid)
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    return results["first"], results["second"]


def _wait_until_blocked(factory: sessionmaker[Session], pid: list[int]) -> None:
    deadline = time.monotonic() + 20
    with factory() as observer:
        while time.monotonic() < deadline:
            if pid:
                waiting = observer.scalar(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid[0]},
                )
                observer.rollback()
                if waiting == "Lock":
                    return
            time.sleep(0.02)
    raise AssertionError("the second transaction never waited on the first one's lock")


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(query) or 0)


def test_a_concurrent_retry_with_the_same_key_posts_once(race_engine: Engine) -> None:
    factory = make_session_factory(race_engine)
    lines = [debit(BANK, "EUR", 4200), credit(PLATFORM_REVENUE, "EUR", 4200)]
    with factory() as session, session.begin():
        # The accounts exist already, so the race is on the entry's key alone.
        ledger.post_entry(
            session,
            idempotency_key="warm-up",
            kind=EntryKind.INVOICE,
            description="warm-up",
            lines=lines,
            actor=ACTOR,
        )

    def post(session: Session) -> str:
        return ledger.post_entry(
            session,
            idempotency_key="retry-me",
            kind=EntryKind.INVOICE,
            description="the same request, twice",
            lines=lines,
            actor=ACTOR,
        ).id

    first, second = race(factory, post, post)
    assert first == second, second
    with factory() as session:
        assert (
            _count(
                session,
                select(func.count())
                .select_from(JournalEntry)
                .where(JournalEntry.idempotency_key == "retry-me"),
            )
            == 1
        )
        events = select(func.count()).select_from(AuditEvent)
        assert _count(session, events.where(AuditEvent.action == "ledger.entry_posted")) == 2
        assert ledger.balance(session, BANK, "EUR") == 2 * 4200
        assert verify_stored_chain(session) == (True, None, None)


def test_a_concurrent_retry_with_other_lines_is_refused(race_engine: Engine) -> None:
    factory = make_session_factory(race_engine)
    with factory() as session, session.begin():
        ledger.post_entry(
            session,
            idempotency_key="warm-up",
            kind=EntryKind.INVOICE,
            description="warm-up",
            lines=[debit(BANK, "EUR", 1), credit(PLATFORM_REVENUE, "EUR", 1)],
            actor=ACTOR,
        )

    def post(amount: int) -> Callable[[Session], str]:
        def run(session: Session) -> str:
            return ledger.post_entry(
                session,
                idempotency_key="reused",
                kind=EntryKind.INVOICE,
                description="reused key",
                lines=[debit(BANK, "EUR", amount), credit(PLATFORM_REVENUE, "EUR", amount)],
                actor=ACTOR,
            ).id

        return run

    _, second = race(factory, post(100), post(999))
    assert isinstance(second, Conflict) and second.code == "idempotency_key_reused"
    with factory() as session:
        assert ledger.balance(session, BANK, "EUR") == 101


def test_two_first_uses_of_an_account_open_it_once(race_engine: Engine) -> None:
    factory = make_session_factory(race_engine)
    with factory() as session, session.begin():
        contributor = new_contributor(session)

    def post(key: str) -> Callable[[Session], str]:
        def run(session: Session) -> str:
            return ledger.post_entry(
                session,
                idempotency_key=key,
                kind=EntryKind.PAYMENT,
                description=key,
                lines=[debit(BANK, "EUR", 10), credit(contributor_payable(contributor), "EUR", 10)],
                actor=ACTOR,
            ).id

        return run

    first, second = race(factory, post("one"), post("two"))
    assert isinstance(first, str) and isinstance(second, str) and first != second
    with factory() as session:
        assert ledger.balance(session, contributor_payable(contributor), "EUR") == 20
        assert _count(session, select(func.count()).select_from(LedgerAccount)) == 2
        assert verify_stored_chain(session) == (True, None, None)


def test_a_payment_retried_concurrently_pays_once(race_engine: Engine) -> None:
    factory = make_session_factory(race_engine)
    with factory() as session, session.begin():
        org_id = new_org(session)
        contributor = new_contributor(session)
        ledger.record_invoice(
            session,
            order_id="ord_race",
            org_id=org_id,
            currency="EUR",
            total_minor=5000,
            actor=ACTOR,
        )

    def pay(session: Session) -> str:
        return ledger.record_payment(
            session,
            order_id="ord_race",
            org_id=org_id,
            currency="EUR",
            total_minor=5000,
            contributor_shares={contributor: 4000},
            platform_fee_minor=1000,
            actor=ACTOR,
        ).id

    first, second = race(factory, pay, pay)
    assert first == second, second
    with factory() as session:
        assert ledger.balance(session, contributor_payable(contributor), "EUR") == 4000
        assert ledger.balance(session, BANK, "EUR") == 5000


def test_two_operators_creating_a_batch_at_once_pay_once(race_engine: Engine) -> None:
    factory = make_session_factory(race_engine)
    with factory() as session, session.begin():
        org_id = new_org(session)
        contributor = new_contributor(session)
        ledger.record_invoice(
            session,
            order_id="ord_batch",
            org_id=org_id,
            currency="EUR",
            total_minor=3000,
            actor=ACTOR,
        )
        ledger.record_payment(
            session,
            order_id="ord_batch",
            org_id=org_id,
            currency="EUR",
            total_minor=3000,
            contributor_shares={contributor: 2500},
            platform_fee_minor=500,
            actor=ACTOR,
        )
        ledger.set_payout_details(
            session,
            user_id=contributor,
            account_holder="Race Person",
            iban="DE89370400440532013000",
            actor=ACTOR,
        )

    def create(session: Session) -> str:
        return ledger.create_payout_batch(
            session, currency="EUR", minimum_minor=1000, actor=ACTOR
        ).id

    first, second = race(factory, create, create)
    assert isinstance(first, str)
    assert isinstance(second, Conflict) and second.code == "nothing_to_pay", second
    with factory() as session:
        assert _count(session, select(func.count()).select_from(PayoutBatch)) == 1
        assert ledger.balance(session, contributor_payable(contributor), "EUR") == 0
