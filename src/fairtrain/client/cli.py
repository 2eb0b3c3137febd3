"""``fairtrain data …``: a buyer's commands, run wherever the training happens.

``pull`` downloads a licence's export with a progress bar, resuming after an interruption
and refusing any file that does not match the manifest; ``verify`` checks a pulled copy
again, offline; ``sync`` applies withdrawal notices to it and attests the deletion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from fairtrain.cli_support import JsonOption, err_console
from fairtrain.client.delivery import DeliveryFailed, FairtrainClient, FileRefused, verify
from fairtrain.client.sync import sync
from fairtrain.errors import DomainError

__all__ = ["data_app"]

console = Console()
data_app = typer.Typer(
    help="Buyers: download licensed data and check it against its manifest.",
    no_args_is_help=True,
)


@data_app.command("pull")
def pull_command(
    licence_id: Annotated[str, typer.Argument(help="The licence (lic_…) to download.")],
    dest: Annotated[Path, typer.Argument(help="The directory to download into.")],
    server: Annotated[
        str, typer.Option(envvar="FAIRTRAIN_SERVER", help="The server's base URL.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="FAIRTRAIN_API_KEY",
            help="An API key of your organisation with the downloads:read scope.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Download a licence's export into DEST, verifying every file's SHA-256 against the
    manifest. Run it again to resume. Exit 1 when a file is refused or the export failed,
    2 when the server cannot be reached or refuses the request."""
    key = api_key or typer.prompt("API key", hide_input=True)
    columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    try:
        with (
            FairtrainClient(server, api_key=key) as client,
            Progress(*columns, console=err_console, disable=as_json) as progress,
        ):
            task = progress.add_task(licence_id, total=None)

            def advance(received: int, total: int) -> None:
                progress.update(task, total=total, advance=received)

            result = client.pull(licence_id, dest, progress=advance)
    except FileRefused as error:
        err_console.print(f"[red]Refused {error.path}:[/red] {error.detail}")
        raise typer.Exit(code=1) from error
    except DeliveryFailed as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=1 if error.status is None else 2) from error
    except httpx.HTTPError as error:
        err_console.print(f"[red]Cannot reach {server}:[/red] {error}")
        raise typer.Exit(code=2) from error
    summary = {
        "directory": str(result.directory),
        "licence_id": result.licence_id,
        "export_id": result.export_id,
        "manifest_sha256": result.manifest_sha256,
        "files": result.files,
        "bytes_downloaded": result.bytes_downloaded,
        "resumed": result.resumed,
        "kept": result.kept,
    }
    if as_json:
        console.print_json(json.dumps(summary))
        return
    resumed = f", {len(result.resumed)} resumed" if result.resumed else ""
    console.print(
        f"[green]Verified[/green] {result.files} files of licence {result.licence_id} in "
        f"{result.directory} (manifest {result.manifest_sha256[:16]}…{resumed})."
    )


@data_app.command("verify")
def verify_command(
    dest: Annotated[Path, typer.Argument(help="A directory pulled with `fairtrain data pull`.")],
    as_json: JsonOption = False,
) -> None:
    """Check a pulled copy against its manifest, offline: every file present, with the
    listed size and SHA-256, and nothing unlisted. Exit 1 naming each bad file."""
    try:
        check = verify(dest)
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "ok": check.ok,
                    "checked": check.checked,
                    "mismatched": list(check.mismatched),
                    "missing": list(check.missing),
                    "extra": list(check.extra),
                    "unsafe": list(check.unsafe),
                }
            )
        )
    elif check.ok:
        console.print(f"[green]OK[/green]: {check.checked} files match the manifest.")
    else:
        for problem in check.problems():
            console.print(f"[red]{problem}[/red]")
    if not check.ok:
        raise typer.Exit(code=1)


@data_app.command("sync")
def sync_command(
    dest: Annotated[Path, typer.Argument(help="A directory pulled with `fairtrain data pull`.")],
    signing_key: Annotated[
        Path,
        typer.Option(
            "--signing-key",
            envvar="FAIRTRAIN_SIGNING_KEY",
            help="Your organisation's Ed25519 private key (PEM) for deletion attestations.",
        ),
    ],
    server: Annotated[
        str, typer.Option(envvar="FAIRTRAIN_SERVER", help="The server's base URL.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="FAIRTRAIN_API_KEY",
            help="An API key with the notices:read and attestations:write scopes.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Apply withdrawals to the copy in DEST: read new notices, delete the withdrawn items,
    acknowledge each notice and attest the deletion, signed with --signing-key. Exit 2
    when the server refuses or cannot be reached, or the copy was modified."""
    key = api_key or typer.prompt("API key", hide_input=True)
    try:
        private = serialization.load_pem_private_key(signing_key.read_bytes(), password=None)
    except (OSError, ValueError) as error:
        err_console.print(f"[red]Cannot read the signing key {signing_key}:[/red] {error}")
        raise typer.Exit(code=2) from error
    if not isinstance(private, Ed25519PrivateKey):
        err_console.print("[red]The signing key is not an Ed25519 private key.[/red]")
        raise typer.Exit(code=2)
    try:
        with FairtrainClient(server, api_key=key) as client:
            result = sync(client, dest, key=private)
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    except DeliveryFailed as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    except httpx.HTTPError as error:
        err_console.print(f"[red]Cannot reach {server}:[/red] {error}")
        raise typer.Exit(code=2) from error
    summary = {"licence_id": result.licence_id, "notices": result.notices,
               "removed": result.removed, "attested": result.attested}  # fmt: skip
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(
        f"{len(result.notices)} notice(s) applied to {dest}: {len(result.removed)} item(s) "
        f"deleted, {len(result.attested)} deletion attestation(s) sent."
    )
