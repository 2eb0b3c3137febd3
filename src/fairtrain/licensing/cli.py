"""``fairtrain licences …``: end licences whose term is over, and check an agreement
offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session, refuse
from fairtrain.licensing import service
from fairtrain.licensing.agreement import AGREEMENT, AgreementInvalid
from fairtrain.signing import verify_file

__all__ = ["app"]

app = typer.Typer(help="Licences: expire those whose term ended; verify agreements.",
                  no_args_is_help=True)  # fmt: skip
console = Console()


@app.command("expire")
def expire_command(as_json: JsonOption = False) -> None:
    """Mark every active licence whose term has ended as expired (run it daily, e.g.
    from cron; each is audited, and the buyer must delete the data)."""
    with cli_session() as session:
        ended = service.expire_licences(session, actor=CLI_ACTOR)
        ids = [licence.id for licence in ended]
    if as_json:
        console.print_json(json.dumps({"expired": ids}))
        return
    console.print(f"{len(ids)} licence(s) expired." + ("" if not ids else " " + ", ".join(ids)))


@app.command("verify-agreement")
def verify_agreement_command(
    path: Annotated[
        Path, typer.Argument(help="An agreement file from GET /licences/{id}/agreement.")
    ],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The platform's public key (PEM).")
    ],
) -> None:
    """Check a licence agreement offline: the platform's signature, and that the readable
    copy is what was signed. Exit 1 when it does not verify."""
    try:
        signed = verify_file(path, public_key.read_bytes(), AGREEMENT)
    except AgreementInvalid as error:
        console.print(f"[red]INVALID ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=1) from error
    except OSError as error:
        raise refuse(
            AgreementInvalid(f"Cannot read {public_key}: {error}.", code="public_key_invalid")
        ) from error
    console.print(f"[green]VALID[/green] licence agreement {signed['uid']}")
