"""``fairtrain ledger …``: the trial balance and payout runs, for operators at a terminal.

Each command opens its own engine from ``get_settings()`` and runs in one transaction;
a refusal prints its code and sentence and exits 2. The audit log names the actor
``system:cli``.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session, err_console
from fairtrain.config import get_settings
from fairtrain.ledger import service
from fairtrain.ledger.models import PayoutBatch
from fairtrain.ledger.payouts import ExportFormat
from fairtrain.money import major_text

__all__ = ["app"]


app = typer.Typer(
    help="Ledger: the trial balance, and payout batches (create, export for the bank, mark paid).",
    no_args_is_help=True,
)
payouts_app = typer.Typer(
    help="Payout batches: pay contributors what they are owed.", no_args_is_help=True
)
app.add_typer(payouts_app, name="payouts")
console = Console()


def _session() -> AbstractContextManager[Session]:
    return cli_session()


@app.command("trial-balance")
def trial_balance_command(as_json: JsonOption = False) -> None:
    """Every account's debits, credits and balance per currency (debits = credits)."""
    with _session() as session:
        result = service.trial_balance(session)
    document = {
        "currencies": [
            {
                "currency": c.currency,
                "debit_minor": c.debit_minor,
                "credit_minor": c.credit_minor,
                "accounts": [
                    {
                        "account": a.account,
                        "kind": a.kind.value,
                        "debit_minor": a.debit_minor,
                        "credit_minor": a.credit_minor,
                        "balance_minor": a.balance_minor,
                    }
                    for a in c.accounts
                ],
            }
            for c in result.currencies
        ]
    }
    if as_json:
        console.print_json(json.dumps(document))
        return
    if not result.currencies:
        console.print("The ledger is empty.")
        return
    for block in result.currencies:
        table = Table(title=f"Trial balance, {block.currency}")
        for column in ("account", "kind", "debit", "credit", "balance"):
            table.add_column(column, justify="left" if column in ("account", "kind") else "right")
        for account in block.accounts:
            table.add_row(
                account.account,
                account.kind.value,
                major_text(account.debit_minor, block.currency),
                major_text(account.credit_minor, block.currency),
                major_text(account.balance_minor, block.currency),
            )
        table.add_row(
            "[bold]total[/bold]",
            "",
            major_text(block.debit_minor, block.currency),
            major_text(block.credit_minor, block.currency),
            "",
        )
        console.print(table)


def _batch_document(session: Session, batch: PayoutBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "currency": batch.currency,
        "state": str(batch.state),
        "item_count": batch.item_count,
        "total_minor": batch.total_minor,
        "entry_id": batch.entry_id,
        "paid_entry_id": batch.paid_entry_id,
        "skipped": batch.skipped,
        "items": [
            {"id": i.id, "user_id": i.user_id, "amount_minor": i.amount_minor}
            for i in service.batch_items(session, batch.id)
        ],
    }


@payouts_app.command("create")
def create_command(
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the batch, e.g. EUR.")],
    as_json: JsonOption = False,
) -> None:
    """Batch everyone owed at least FAIRTRAIN_PAYOUT_MINIMUM_MINOR who has payout details."""
    settings = get_settings()
    with _session() as session:
        batch = service.create_payout_batch(
            session,
            currency=currency,
            minimum_minor=settings.payout_minimum_minor,
            actor=CLI_ACTOR,
        )
        document = _batch_document(session, batch)
    if as_json:
        console.print_json(json.dumps(document))
        return
    console.print(
        f"Created payout batch {document['id']}: {document['item_count']} transfer(s), "
        f"{major_text(document['total_minor'], document['currency'])} {document['currency']}."
    )
    for skipped in document["skipped"]:
        console.print(
            f"  skipped {skipped['user_id']} "
            f"({major_text(skipped['balance_minor'], document['currency'])}): "
            f"{skipped['reason']}"
        )


@payouts_app.command("export")
def export_command(
    batch_id: Annotated[str, typer.Argument(help="The batch id (pob_…).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="csv, or pain001 (ISO 20022 XML).")
    ] = ExportFormat.CSV,
) -> None:
    """Write a batch as CSV or as a pain.001.001.09 file for the bank."""
    settings = get_settings()
    with _session() as session:
        exported = service.export_batch(
            session,
            batch_id,
            export_format=export_format.value,
            debtor_name=settings.payout_debtor_name,
            debtor_iban=settings.payout_debtor_iban,
            debtor_bic=settings.payout_debtor_bic,
            actor=CLI_ACTOR,
        )
        # Written inside the transaction: if the file cannot be written, the export's
        # audit event is rolled back with it.
        try:
            output.write_bytes(exported.content)
        except OSError as error:
            err_console.print(f"[red]Cannot write {output}: {error}[/red]")
            raise typer.Exit(code=2) from error
    console.print(f"Wrote {output} ({export_format.value}, {len(exported.content)} bytes).")


@payouts_app.command("mark-paid")
def mark_paid_command(
    batch_id: Annotated[str, typer.Argument(help="The batch id (pob_…).")],
    as_json: JsonOption = False,
) -> None:
    """The bank confirmed the batch: book it out of the bank account."""
    with _session() as session:
        batch = service.mark_batch_paid(session, batch_id, actor=CLI_ACTOR)
        document = _batch_document(session, batch)
    if as_json:
        console.print_json(json.dumps(document))
    else:
        console.print(f"Payout batch {batch_id} marked paid ({document['paid_entry_id']}).")
