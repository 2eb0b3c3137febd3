"""``fairtrain vault …``: operator commands for the encrypted blob store.

Each command opens its own engine from ``get_settings()`` and runs in one transaction.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairtrain.cli_support import JsonOption, cli_session
from fairtrain.config import Settings, get_settings
from fairtrain.vault.backends import backend_from_url
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.models import BlobState, VaultBlob
from fairtrain.vault.service import (
    find_orphans,
    prune_retired_keks,
    rotate_kek,
    sweep_orphans,
    verify_blobs,
)

__all__ = ["app"]

app = typer.Typer(
    help="Encrypted vault: rotate the key-encryption key, verify blobs, sweep orphans.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


def _session(settings: Settings) -> AbstractContextManager[Session]:
    return cli_session(settings)


@app.command("rotate-kek")
def rotate_kek_command(json_output: JsonOption = False) -> None:
    """Re-wrap every contributor data key with a new key-encryption key.

    Blobs are not re-encrypted. The old KEK is kept as ``<kek file>.<id>.retired`` until
    the re-wrapped keys are committed, then removed.
    """
    settings = get_settings()
    with _session(settings) as session:
        rewrapped = rotate_kek(session, settings)
    with _session(settings) as session:
        pruned = prune_retired_keks(session, settings)
    new_id = KeyRing.from_file(settings.effective_kek_path).current.id
    if json_output:
        console.print_json(
            json.dumps({"kek_id": new_id, "keys_rewrapped": rewrapped, "retired_removed": pruned})
        )
        return
    console.print(
        f"Key-encryption key rotated to [bold]{new_id}[/bold]: {rewrapped} data key(s) "
        f"re-wrapped, {len(pruned)} retired key file(s) removed."
    )


@app.command("verify")
def verify_command(json_output: JsonOption = False) -> None:
    """Decrypt every stored blob and check it against its recorded hash.

    Exits with status 1 when any blob fails.
    """
    settings = get_settings()
    backend = backend_from_url(settings.effective_vault_url)
    keyring = KeyRing.from_settings(settings)
    failures: list[dict[str, str | None]] = []
    checked = 0
    with _session(settings) as session:
        total = session.scalar(
            select(func.count()).select_from(VaultBlob).where(VaultBlob.state == BlobState.STORED)
        )
        with Progress(console=err_console, transient=True, disable=json_output) as progress:
            task = progress.add_task("Verifying blobs", total=total)
            for check in verify_blobs(session, backend, keyring=keyring):
                checked += 1
                progress.advance(task)
                if not check.ok:
                    failures.append(
                        {"blob_id": check.blob_id, "code": check.code, "detail": check.detail}
                    )
    if json_output:
        console.print_json(json.dumps({"checked": checked, "failures": failures}))
    else:
        for failure in failures:
            err_console.print(f"[red]{failure['blob_id']}[/red] {failure['detail']}")
        console.print(f"{checked} blob(s) checked, {len(failures)} failed.")
    if failures:
        raise typer.Exit(1)


@app.command("orphans")
def orphans_command(
    delete: Annotated[bool, typer.Option("--delete", help="Delete them, not just list.")] = False,
    grace_minutes: Annotated[
        int, typer.Option(help="Ignore objects younger than this (uploads in flight).")
    ] = 60,
    json_output: JsonOption = False,
) -> None:
    """List (or delete) stored objects that no blob row refers to."""
    settings = get_settings()
    backend = backend_from_url(settings.effective_vault_url)
    grace = timedelta(minutes=grace_minutes)
    with _session(settings) as session:
        if delete:
            keys = sweep_orphans(session, backend, grace=grace)
        else:
            keys = [stored.key for stored in find_orphans(session, backend, grace=grace)]
    if json_output:
        console.print_json(json.dumps({"orphans": keys, "deleted": delete}))
        return
    for key in keys:
        console.print(key)
    verb = "deleted" if delete else "found"
    console.print(f"{len(keys)} orphan object(s) {verb}.")
