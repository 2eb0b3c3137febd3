"""``fairtrain compliance …``: answer a data-subject request received by post or e-mail,
and print the records of processing and the licence register."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fairtrain.audit.keys import key_id, platform_signing_key
from fairtrain.audit.service import append_event
from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session
from fairtrain.compliance import reports
from fairtrain.compliance.subject_access import write_subject_access_archive
from fairtrain.config import get_settings
from fairtrain.ids import utcnow
from fairtrain.runtime import Runtime

__all__ = ["app"]

app = typer.Typer(help="Compliance: subject-access archives, records of processing, registers.",
                  no_args_is_help=True)  # fmt: skip
console = Console()


@app.command("subject-access")
def subject_access_command(
    user_id: Annotated[str, typer.Argument(help="The person's id (usr_…).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the zip.")],
) -> None:
    """Write everything held about one person to a zip (GDPR Art. 15/20), for a request
    that did not come through the website. Audited."""
    settings = get_settings()
    runtime = Runtime(settings)
    public_key_id = key_id(platform_signing_key(settings).public_key())
    with cli_session(settings) as session, output.open("wb") as handle:
        archive = write_subject_access_archive(
            session, user_id, handle, runtime.vault.open_blob, public_key_id
        )
        append_event(
            session,
            actor=CLI_ACTOR,
            action="subject_access.exported",
            subject=f"user:{user_id}",
            payload={"files": archive.files, "bytes": archive.bytes_written,
                     "assets": archive.assets, "events": archive.events},
        )  # fmt: skip
    console.print(
        f"Wrote {output}: {archive.files} files, {archive.assets} assets, "
        f"{archive.events} audit events."
    )


@app.command("records-of-processing")
def records_command() -> None:
    """The records of processing activities (GDPR Art. 30) as JSON."""
    with cli_session() as session:
        record = reports.records_of_processing(session, get_settings(), utcnow())
    console.print_json(json.dumps(record, default=lambda v: v.isoformat()))


@app.command("licence-register")
def register_command(as_json: JsonOption = False) -> None:
    """Every licence ever granted (CSV, or JSON with --json)."""
    with cli_session() as session:
        rows = reports.licence_register(session)
    if as_json:
        console.print_json(json.dumps({"licences": rows}))
    else:
        typer.echo(reports.licence_register_csv(rows), nl=False)


@app.command("withdrawal-register")
def withdrawal_register_command(as_json: JsonOption = False) -> None:
    """Every withdrawal notice and where its buyer stands (CSV, or JSON with --json,
    which adds the attestation compliance rates)."""
    with cli_session() as session:
        rows = reports.withdrawal_register(session)
        compliance = reports.attestation_compliance(session, utcnow())
    if as_json:
        console.print_json(json.dumps({"notices": rows, "attestation_compliance": compliance}))
    else:
        typer.echo(reports.register_csv(rows, reports.WITHDRAWAL_REGISTER_COLUMNS), nl=False)
