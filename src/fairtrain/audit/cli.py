"""``fairtrain audit …``: export, verify offline, sign checkpoints, prove inclusion.

``verify`` and ``verify-proof`` read nothing but their arguments: no database, no
settings, so an auditor runs them on a machine that has never seen the platform. The
other commands open their own engine from ``get_settings()`` and run in one transaction.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from sqlalchemy.orm import Session

from fairtrain.audit.keys import SigningKeyUnavailable, platform_signing_key
from fairtrain.cli_support import JsonOption, cli_session, refuse
from fairtrain.config import get_settings
from fairtrain.errors import DomainError

__all__ = ["app"]

app = typer.Typer(
    help="Tamper-evident audit log: export it, verify an export offline, sign checkpoints, "
    "prove that an event is in the signed log.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


def _session() -> AbstractContextManager[Session]:
    return cli_session()


def _signing_key() -> Ed25519PrivateKey:
    try:
        return platform_signing_key(get_settings())
    except SigningKeyUnavailable as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error


@app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="Empty or new directory to write to.")],
    checkpoint: Annotated[
        bool,
        typer.Option(
            "--checkpoint/--no-checkpoint",
            help="Sign a checkpoint over the newest events first, so every event is covered.",
        ),
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Write events, checkpoints, the public key and a MANIFEST to DIRECTORY."""
    from fairtrain.audit.checkpoint import create_checkpoint
    from fairtrain.audit.export import export_log

    key = _signing_key()
    try:
        if checkpoint:
            with _session() as session:
                try:
                    create_checkpoint(session, key)
                except DomainError as error:
                    if error.code != "audit_empty":
                        raise
        with _session() as session, console.status("Exporting the audit log…"):
            summary = export_log(session, directory, key.public_key())
    except DomainError as error:
        raise refuse(error) from error
    result = {
        "directory": str(summary.directory),
        "events": summary.events,
        "checkpoints": summary.checkpoints,
        "key_id": summary.key_id,
    }
    if json_output:
        console.print_json(json.dumps(result))
    else:
        console.print(
            f"Exported {summary.events} events and {summary.checkpoints} checkpoints to "
            f"{summary.directory} (key {summary.key_id})."
        )


@app.command("verify")
def verify_command(
    directory: Annotated[Path, typer.Argument(help="An export written by `audit export`.")],
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            help="The platform key id you trust (published by the platform); without it "
            "the export's own public key is trusted.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verify an export offline; exits 1 and names the first bad event on failure."""
    from fairtrain.audit.verify import verify_export

    with console.status("Verifying…"):
        report = verify_export(directory, expected_key_id=key_id)
    if json_output:
        console.print_json(json.dumps(report.as_dict()))
    elif report.ok:
        console.print(
            f"[green]OK[/green]: {report.events_checked} events and "
            f"{report.checkpoints_checked} signed checkpoints verify (key {report.key_id})."
        )
        if report.unsigned_events:
            console.print(
                f"[yellow]{report.unsigned_events} event(s) after the last checkpoint are "
                "chained but not yet signed.[/yellow]"
            )
        if key_id is None:
            console.print("Compare the key id with the one the platform publishes.")
    else:
        where = f" at event {report.first_bad_seq}" if report.first_bad_seq is not None else ""
        err_console.print(f"[red]FAILED{where}[/red]: {report.problem}")
    if not report.ok:
        raise typer.Exit(code=1)


@app.command("checkpoint")
def checkpoint_command(json_output: JsonOption = False) -> None:
    """Sign a Merkle checkpoint over every event so far with the platform key."""
    from fairtrain.audit.checkpoint import checkpoint_record, create_checkpoint

    key = _signing_key()
    try:
        with _session() as session:
            record = checkpoint_record(create_checkpoint(session, key))
    except DomainError as error:
        raise refuse(error) from error
    if json_output:
        console.print_json(json.dumps(record))
    else:
        console.print(
            f"Checkpoint over {record['tree_size']} events: root {record['root_hash']} "
            f"(key {record['key_id']})."
        )


@app.command("prove")
def prove_command(
    event_id: Annotated[str, typer.Argument(help="The event's id (evt_…).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the proof to this file.")
    ] = None,
) -> None:
    """Print a proof (JSON) that the event is in the latest signed checkpoint."""
    from fairtrain.audit.checkpoint import inclusion_proof

    try:
        with _session() as session:
            proof = inclusion_proof(session, event_id)
    except DomainError as error:
        raise refuse(error) from error
    document = json.dumps(proof, indent=2, sort_keys=True)
    if output is not None:
        output.write_text(document + "\n")
        console.print(f"Proof for {event_id} written to {output}.")
    else:
        console.print_json(document)


@app.command("verify-proof")
def verify_proof_command(
    proof_file: Annotated[Path, typer.Argument(help="A proof written by `audit prove`.")],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The platform's public key (PEM).")
    ],
) -> None:
    """Check an inclusion proof offline against the platform's public key."""
    from fairtrain.audit.verify import verify_inclusion_proof

    try:
        proof = json.loads(proof_file.read_text())
        pem = public_key.read_bytes()
    except (OSError, ValueError) as error:
        err_console.print(f"[red]Cannot read the proof or key:[/red] {error}")
        raise typer.Exit(code=2) from error
    if not isinstance(proof, dict) or not verify_inclusion_proof(proof, pem):
        err_console.print("[red]FAILED[/red]: the proof does not verify with this key.")
        raise typer.Exit(code=1)
    console.print(
        f"[green]OK[/green]: event {proof.get('event_id')} is event {proof.get('seq')} of the "
        f"{proof['checkpoint']['tree_size']} signed by key {proof['checkpoint']['key_id']}."
    )
