"""``fairtrain catalog …``: keep the catalogue true over time (run daily, e.g. from cron)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from fairtrain.catalog import campaigns
from fairtrain.catalog import service as catalog
from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session

__all__ = ["app"]

app = typer.Typer(help="Catalogue upkeep: refresh entries, close past-deadline campaigns.",
                  no_args_is_help=True)  # fmt: skip
console = Console()


@app.command("refresh")
def refresh_command(as_json: JsonOption = False) -> None:
    """Re-derive every listed asset's catalogue entry (age bands move with birthdays)."""
    with cli_session() as session:
        count = catalog.refresh_entries(session)
    if as_json:
        console.print_json(json.dumps({"refreshed": count}))
    else:
        console.print(f"{count} catalogue entries refreshed.")


@app.command("close-expired")
def close_expired_command(as_json: JsonOption = False) -> None:
    """Record the closing of every open campaign whose deadline has passed."""
    with cli_session() as session:
        closed = list(campaigns.close_expired(session, actor=CLI_ACTOR))
    if as_json:
        console.print_json(json.dumps({"closed": closed}))
    else:
        console.print(f"{len(closed)} campaign(s) closed.")
