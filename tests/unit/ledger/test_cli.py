"""``fairtrain ledger …`` against a dev-mode data directory: the trial balance, and a
payout run from the terminal (create, export CSV and pain.001, mark paid), refusals."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.unit.ledger.conftest import new_contributor, new_org
from typer.testing import CliRunner, Result

from fairtrain.audit.models import AuditEvent
from fairtrain.cli import app
from fairtrain.config import get_settings, reset_settings_cache
from fairtrain.db import make_engine, make_session_factory
from fairtrain.ledger import service as ledger
from fairtrain.ledger.payouts import PAIN001_NAMESPACE

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FAIRTRAIN_PAYOUT_DEBTOR_IBAN", "GB82 WEST 1234 5698 7654 32")
    monkeypatch.setenv("FAIRTRAIN_PAYOUT_DEBTOR_NAME", "fairtrain test platform")
    reset_settings_cache()
    assert run("db", "upgrade").exit_code == 0
    yield tmp_path
    reset_settings_cache()


def seed_sale(*, with_details: bool = True) -> tuple[str, str]:
    """A paid licence in the CLI's database: two contributors owed 30.00 and 5.00."""
    engine = make_engine(get_settings().effective_database_url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            org_id = new_org(session)
            big, small = new_contributor(session), new_contributor(session)
            ledger.record_invoice(
                session,
                order_id="ord_cli",
                org_id=org_id,
                currency="EUR",
                total_minor=4000,
                actor="system:test",
            )
            ledger.record_payment(
                session,
                order_id="ord_cli",
                org_id=org_id,
                currency="EUR",
                total_minor=4000,
                contributor_shares={big: 3000, small: 500},
                platform_fee_minor=500,
                actor="system:test",
            )
            if with_details:
                for user_id in (big, small):
                    ledger.set_payout_details(
                        session,
                        user_id=user_id,
                        account_holder="Terminal Payee",
                        iban="DE89370400440532013000",
                        actor=f"user:{user_id}",
                    )
            return big, small
    finally:
        engine.dispose()


def test_trial_balance_of_an_empty_ledger(data_dir: Path) -> None:
    result = run("ledger", "trial-balance")
    assert result.exit_code == 0, result.output
    assert "The ledger is empty." in result.output
    as_json = run("ledger", "trial-balance", "--json")
    assert json.loads(as_json.stdout) == {"currencies": []}


def test_a_payout_run_from_the_terminal(data_dir: Path, tmp_path: Path) -> None:
    big, small = seed_sale()
    table = run("ledger", "trial-balance")
    assert table.exit_code == 0, table.output
    assert "Trial balance, EUR" in table.output and "platform_revenue" in table.output

    created = run("ledger", "payouts", "create", "--currency", "eur", "--json")
    assert created.exit_code == 0, created.output
    batch = json.loads(created.stdout)
    assert (batch["currency"], batch["item_count"], batch["total_minor"]) == ("EUR", 1, 3000)
    assert batch["items"][0]["user_id"] == big
    assert batch["skipped"] == [{"user_id": small, "balance_minor": 500, "reason": "below_minimum"}]

    out_csv = tmp_path / "batch.csv"
    exported = run(
        "ledger", "payouts", "export", batch["id"], "--format", "csv", "-o", str(out_csv)
    )
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(out_csv.read_text(encoding="utf-8").splitlines()))
    assert [(r["user_id"], r["amount"]) for r in rows] == [(big, "30.00")]

    out_xml = tmp_path / "batch.xml"
    exported = run(
        "ledger", "payouts", "export", batch["id"], "--format", "pain001", "-o", str(out_xml)
    )
    assert exported.exit_code == 0, exported.output
    root = ET.parse(out_xml).getroot()
    ns = {"p": PAIN001_NAMESPACE}
    assert root.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=ns) == "1"
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == "30.00"
    assert root.findtext(".//p:Dbtr/p:Nm", namespaces=ns) == "fairtrain test platform"
    assert root.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=ns) == "GB82WEST12345698765432"

    paid = run("ledger", "payouts", "mark-paid", batch["id"])
    assert paid.exit_code == 0, paid.output
    assert f"{batch['id']} marked paid" in flat(paid.output)
    again = run("ledger", "payouts", "mark-paid", batch["id"])
    assert again.exit_code == 2
    assert "batch_already_paid" in again.output

    final = json.loads(run("ledger", "trial-balance", "--json").stdout)
    (eur,) = final["currencies"]
    assert eur["debit_minor"] == eur["credit_minor"]
    balances = {a["account"]: a["balance_minor"] for a in eur["accounts"]}
    assert balances["bank"] == 1000 and balances["payout_clearing"] == 0


def test_refusals_exit_2_with_the_code(data_dir: Path, tmp_path: Path) -> None:
    seed_sale(with_details=False)
    nothing = run("ledger", "payouts", "create", "--currency", "EUR")
    assert nothing.exit_code == 2 and "nothing_to_pay" in nothing.output
    currency = run("ledger", "payouts", "create", "--currency", "DOGE")
    assert currency.exit_code == 2 and "unknown_currency" in currency.output
    missing = run("ledger", "payouts", "export", "pob_nope", "-o", str(tmp_path / "x.csv"))
    assert missing.exit_code == 2 and "batch_not_found" in missing.output
    assert not (tmp_path / "x.csv").exists()
    bad_format = run("ledger", "payouts", "export", "pob_nope", "--format", "xlsx", "-o", "x")
    assert bad_format.exit_code != 0
    unpaid = run("ledger", "payouts", "mark-paid", "pob_nope")
    assert unpaid.exit_code == 2 and "batch_not_found" in unpaid.output


def test_a_file_that_cannot_be_written_leaves_no_export_event(
    data_dir: Path, tmp_path: Path
) -> None:
    seed_sale()
    batch = json.loads(run("ledger", "payouts", "create", "--currency", "EUR", "--json").stdout)
    result = run(
        "ledger", "payouts", "export", batch["id"], "-o", str(tmp_path / "no-such-dir" / "b.csv")
    )
    assert result.exit_code == 2 and "Cannot write" in flat(result.output)
    engine = make_engine(get_settings().effective_database_url)
    try:
        with make_session_factory(engine)() as session:
            actions = set(session.scalars(select(AuditEvent.action)))
            assert "ledger.payout_batch_created" in actions
            assert "ledger.payout_batch_exported" not in actions
    finally:
        engine.dispose()
