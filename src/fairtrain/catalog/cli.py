"""``fairtrain catalog …``: keep the catalogue true over time (run daily, e.g. from cron)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from fairtrain.catalog import campaigns
from fairtrain.catalog import service as catalog
from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session

__all__ = ["app"]

app = typer.Typer(help="Catalogue upkeep: refresh entries, check facet counts, close "
                       "past-deadline campaigns.",
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


@app.command("check-facets")
def check_facets_command(
    repair: Annotated[
        bool, typer.Option("--repair", help="Recount the facet table when it is wrong.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare the maintained facet counts (cube and margins) with a count over every
    catalogue entry.

    Exits 1 when a count differs (and was not repaired).
    """
    with cli_session() as session:
        mismatches = catalog.check_facets(session)
        cells = None
        if mismatches and repair:
            cells = catalog.rebuild_facets(session)
    report = {
        "ok": not mismatches,
        "mismatches": [
            {
                "table": m.table,
                "cell": m.cell,
                "values": {k: str(v) if v is not None else None for k, v in m.values.items()},
                "expected_entries": m.expected_entries,
                "counted_entries": m.counted_entries,
                "expected_ms": m.expected_ms,
                "counted_ms": m.counted_ms,
            }
            for m in mismatches
        ],
        "repaired_cells": cells,
    }
    if as_json:
        console.print_json(json.dumps(report))
    elif not mismatches:
        console.print("Facet counts agree with the catalogue entries.")
    else:
        console.print(f"{len(mismatches)} facet cell(s) differ from the entries.")
        if cells is not None:
            console.print(f"Recounted: {cells} cell(s) written.")
    if mismatches and cells is None:
        raise typer.Exit(code=1)
