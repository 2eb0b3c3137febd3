"""Ledger benchmark: licence payments posted per second on SQLite and PostgreSQL, beside
plain INSERTs of the same rows, and the trial balance at that size.

    uv run python benchmarks/ledger.py                  # 2,000 payments per database
    uv run python benchmarks/ledger.py --quick          # 300
    uv run python benchmarks/ledger.py --no-postgres    # SQLite only

Each payment is ``record_payment`` with 20 contributor shares (24 lines: bank, the
buyer's receivable, unearned revenue, 20 payables, the platform's fee), posted through
the real service in its own transaction, as a request would: the idempotency check,
the invoice lookup under its row lock, the contributors check, the entry, its lines and
its audit event, then COMMIT. Every payment's invoice is posted first, timed apart.

Baselines, measured in the same run on the same database: the rows a payment writes
(1 entry + 24 lines + 1 audit event = 26), as plain executemany INSERTs into a table
of the same shape, (a) all in ONE transaction, best of three: the most the database
takes in; (b) one transaction per payment's worth of rows: the same commits the ledger
pays, without its reads, checks and locks. The ratios say what the guarantees cost.

Then ``trial_balance`` over everything posted, and one payout batch over the 200
contributors (each owed money, each with payout details).

PostgreSQL is the machine's server (``FAIRTRAIN_BENCH_POSTGRES_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), in a database created and
dropped by the script. Audit checkpoints are not signed here (no signing policy installed);
in the app every 1,000th event also signs one.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert, text
from sqlalchemy.engine import Engine, make_url

import fairtrain.models  # registers every table on Base.metadata
from fairtrain.accounts.models import Organisation, User, UserKind
from fairtrain.db import Base, make_engine, make_session_factory
from fairtrain.ids import new_id, utcnow
from fairtrain.ledger import service as ledger

_REGISTERED = fairtrain.models
CONTRIBUTORS = 200
SHARES_PER_PAYMENT = 20
LINES_PER_PAYMENT = SHARES_PER_PAYMENT + 4
ROWS_PER_PAYMENT = 1 + LINES_PER_PAYMENT + 1  # entry, lines, audit event
IBAN = "DE89370400440532013000"
POSTGRES_URL = os.environ.get(
    "FAIRTRAIN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def seed(engine: Engine) -> tuple[str, list[str]]:
    """An organisation and the contributors, as rows (account creation is not measured)."""
    Base.metadata.create_all(engine)
    now = utcnow()
    org_id = new_id("org")
    users = [new_id("usr") for _ in range(CONTRIBUTORS)]
    with engine.begin() as connection:
        connection.execute(
            insert(Organisation), [{"id": org_id, "name": "Bench Buyer", "created_at": now}]
        )
        connection.execute(
            insert(User),
            [
                {
                    "id": user_id,
                    "email": f"{user_id}@bench.example",
                    "display_name": "Bench Contributor",
                    "kind": UserKind.CONTRIBUTOR.value,
                    "password_hash": "-",
                    "created_at": now,
                }
                for user_id in users
            ],
        )
    return org_id, users


def shares_of(index: int, users: list[str]) -> dict[str, int]:
    start = index * 7 % len(users)
    chosen = [users[(start + k) % len(users)] for k in range(SHARES_PER_PAYMENT)]
    return {user_id: 100 + (index + k) % 50 for k, user_id in enumerate(chosen)}


def bench_postings(engine: Engine, org_id: str, users: list[str], count: int) -> dict[str, float]:
    factory = make_session_factory(engine)
    orders = [f"ord_{i:08d}" for i in range(count)]
    plans = [shares_of(i, users) for i in range(count)]
    totals = [sum(plan.values()) + 250 for plan in plans]
    started = time.perf_counter()
    for order, total in zip(orders, totals, strict=True):
        with factory() as session, session.begin():
            ledger.record_invoice(
                session, order_id=order, org_id=org_id, currency="EUR", total_minor=total,
                actor="system:bench",
            )  # fmt: skip
    invoices = time.perf_counter() - started
    started = time.perf_counter()
    for order, total, plan in zip(orders, totals, plans, strict=True):
        with factory() as session, session.begin():
            ledger.record_payment(
                session,
                order_id=order,
                org_id=org_id,
                currency="EUR",
                total_minor=total,
                contributor_shares=plan,
                platform_fee_minor=250,
                actor="system:bench",
            )
    payments = time.perf_counter() - started

    with factory() as session:
        started = time.perf_counter()
        trial = ledger.trial_balance(session)
        trial_seconds = time.perf_counter() - started
    (eur,) = trial.currencies
    assert eur.debit_minor == eur.credit_minor
    lines = count * (2 + LINES_PER_PAYMENT)

    with factory() as session, session.begin():
        for user_id in users:
            ledger.set_payout_details(
                session, user_id=user_id, account_holder="Bench Payee", iban=IBAN,
                actor="system:bench",
            )  # fmt: skip
    with factory() as session, session.begin():
        started = time.perf_counter()
        batch = ledger.create_payout_batch(
            session, currency="EUR", minimum_minor=1, actor="system:bench"
        )
        batch_seconds = time.perf_counter() - started
    assert batch.item_count == len({u for plan in plans for u in plan})
    return {
        "invoices_per_s": count / invoices,
        "payments_per_s": count / payments,
        "trial_seconds": trial_seconds,
        "trial_lines": lines,
        "batch_seconds": batch_seconds,
        "batch_items": batch.item_count,
    }


def bench_baseline(engine: Engine, count: int) -> tuple[float, float]:
    """Rows per second for plain INSERTs of ``count`` payments' worth of rows: all in one
    transaction (best of three), and one transaction per payment's worth."""
    metadata = MetaData()
    table = Table(
        "bench_plain_rows",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("entry_id", String(40)),
        Column("account_code", String(120)),
        Column("currency", String(3)),
        Column("debit_minor", BigInteger().with_variant(Integer, "sqlite")),
        Column("credit_minor", BigInteger().with_variant(Integer, "sqlite")),
    )
    rows = [
        {
            "entry_id": f"jrn_{i:026d}",
            "account_code": f"contributor_payable:usr_{i % CONTRIBUTORS:026d}",
            "currency": "EUR",
            "debit_minor": 0,
            "credit_minor": 100 + i % 50,
        }
        for i in range(count * ROWS_PER_PAYMENT)
    ]
    best = float("inf")
    for _ in range(3):
        metadata.drop_all(engine)
        metadata.create_all(engine)
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
        best = min(best, time.perf_counter() - started)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    started = time.perf_counter()
    for offset in range(0, len(rows), ROWS_PER_PAYMENT):
        with engine.begin() as connection:
            connection.execute(insert(table), rows[offset : offset + ROWS_PER_PAYMENT])
    per_commit = time.perf_counter() - started
    metadata.drop_all(engine)
    return len(rows) / best, len(rows) / per_commit


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix="fairtrain-ledger-bench-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine() -> Iterator[Engine]:
    # A database of its own, not a schema: advisory locks (the audit chain's, the payout
    # batch's) are per database, and other test runs on the shared server take them.
    name = f"ft_ledger_bench_{secrets.token_hex(4)}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def run(label: str, engine: Engine, count: int) -> None:
    org_id, users = seed(engine)
    figures = bench_postings(engine, org_id, users, count)
    one_txn, per_commit = bench_baseline(engine, count)
    payments = figures["payments_per_s"]
    print(
        f"{label:<9} invoices  {count:>6,} entries x 2 lines    "
        f"{figures['invoices_per_s']:>8,.0f} entries/s (commit each)"
    )
    print(
        f"{label:<9} payments  {count:>6,} entries x {LINES_PER_PAYMENT} lines   "
        f"{payments:>8,.0f} entries/s (commit each)"
    )
    for name, rate in (("one txn", one_txn), ("txn each", per_commit)):
        worth = rate / ROWS_PER_PAYMENT
        print(
            f"{label:<9} baseline  {count * ROWS_PER_PAYMENT:>6,} plain INSERTs, {name:<8} "
            f"{rate:>8,.0f} rows/s = {worth:>7,.0f} payments' worth/s -> "
            f"ledger/plain = {payments / worth:.3f}"
        )
    print(
        f"{label:<9} trial balance over {figures['trial_lines']:,} lines: "
        f"{figures['trial_seconds'] * 1000:,.1f} ms"
    )
    print(f"{label:<9} payout batch of {figures['batch_items']:.0f} contributors: "
          f"{figures['batch_seconds'] * 1000:,.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 payments per database")
    parser.add_argument("--payments", type=int, help="payments per database (default 2,000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    count = args.payments or (300 if args.quick else 2000)
    print("figures from one run on a shared 2-core machine: expect noise; read the ratio")
    with sqlite_engine() as engine:
        run("sqlite", engine, count)
    if not args.no_postgres:
        with postgres_engine() as engine:
            run("postgres", engine, count)


if __name__ == "__main__":
    main()
